"""Prediction distillation of R-CNN outputs on shared regions (G-DetKD)."""
from __future__ import annotations

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..utils.precision import at_least_fp32 as _fp32


@MODELS.register_module()
class RCNNLogitKDLoss(nn.Module):
    r"""Softmax KL between teacher and student R-CNN class logits.

    For regions ``i = 1..K`` with logits ``z`` over ``C + 1`` classes
    (background last, mmdet's layout)::

        q_i = softmax(z_i^t / T)      p_i = softmax(z_i^s / T)
        L_cls = λ · T² · mean_i Σ_c q_i^c · (log q_i^c − log p_i^c)

    The teacher side is detached; computed in fp32. ``T²`` keeps the
    gradient size independent of ``T``. No region: a zero loss.

    Args:
        temperature: T.
        loss_weight: λ.
    """

    def __init__(self, temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}.')
        self.temperature = float(temperature)
        self.loss_weight = loss_weight

    def forward(self, student_logits: Tensor,
                teacher_logits: Tensor) -> Tensor:
        """Args: student_logits, teacher_logits: (K, C + 1). Returns the
        scalar loss."""
        if student_logits.shape != teacher_logits.shape or \
                student_logits.dim() != 2:
            raise ValueError(
                f'Student logits {tuple(student_logits.shape)} and teacher '
                f'logits {tuple(teacher_logits.shape)} must both be (K, C+1);'
                ' teacher and student need the same number of classes.')
        s = _fp32(student_logits)
        if s.shape[0] == 0:
            return s.sum() * 0
        t = _fp32(teacher_logits.detach())
        log_q = F.log_softmax(t / self.temperature, dim=1)
        log_p = F.log_softmax(s / self.temperature, dim=1)
        kl = F.kl_div(log_p, log_q, reduction='none',
                      log_target=True).sum(dim=1)
        return self.loss_weight * self.temperature**2 * kl.mean()


@MODELS.register_module()
class ClassAwareRegKDLoss(nn.Module):
    r"""Class-aware distillation of class-specific R-CNN box deltas.

    For regions ``i = 1..K``, classes ``c = 1..C`` and the 4 delta
    coordinates ``k``, with the teacher's class probabilities
    ``p_t = softmax(z^t)`` over ``C + 1`` classes (background last; its
    probability weights no deltas)::

        L_reg = λ · mean_i Σ_k |Σ_c p_{t,i}^c·(δ_{t,i}^{c,k} − δ_{s,i}^{c,k})|

    i.e. the L1 norm of the probability-weighted delta difference, averaged
    over regions (mmdet's R-CNN box loss also sums the coordinates and
    divides by the number of regions). Deltas are (K, 4·C) for
    class-specific regression (``reg_class_agnostic=False``, mmdet's
    default) or (K, 4) for class-agnostic regression, where the sum over
    classes reduces to the foreground probability. Teacher side detached;
    fp32. No region: a zero loss.

    Args:
        loss_weight: λ.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_deltas: Tensor, teacher_deltas: Tensor,
                teacher_logits: Tensor) -> Tensor:
        """Args:
            student_deltas, teacher_deltas: (K, 4·C) or (K, 4).
            teacher_logits: (K, C + 1).

        Returns:
            Tensor: The scalar loss.
        """
        num, width = student_deltas.shape[0], student_deltas.shape[-1]
        classes = teacher_logits.shape[-1] - 1
        if teacher_deltas.shape != student_deltas.shape or \
                student_deltas.dim() != 2 or width not in (4, 4 * classes) \
                or teacher_logits.shape[0] != num:
            raise ValueError(
                f'Box deltas (student {tuple(student_deltas.shape)}, teacher '
                f'{tuple(teacher_deltas.shape)}) must both be (K, 4*C) or '
                f'(K, 4) for teacher logits {tuple(teacher_logits.shape)} '
                '(K, C+1); give both R-CNN heads the same num_classes and '
                'reg_class_agnostic.')
        s = _fp32(student_deltas)
        if num == 0:
            return s.sum() * 0
        t = _fp32(teacher_deltas.detach())
        prob = _fp32(teacher_logits.detach()).softmax(dim=1)[:, :classes]
        diff = (t - s).reshape(num, -1, 4)  # (K, C or 1, 4)
        if diff.shape[1] == 1:
            weighted = prob.sum(dim=1, keepdim=True) * diff[:, 0]
        else:
            weighted = (prob[..., None] * diff).sum(dim=1)  # (K, 4)
        return self.loss_weight * weighted.abs().sum(dim=1).mean()
