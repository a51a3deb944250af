"""KL divergence between discrete distributions given as logits."""
from __future__ import annotations

from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor, nn
from torch.nn import functional as F

from ...utils.checked_choice import checked_choice
from .logit_standardization import standardize_logits


@MODELS.register_module()
class DistributionKLLoss(nn.Module):
    """Temperature-softened KL divergence from the teacher's to the student's
    distribution, per row (a box edge's distribution over GFL's bins, or a
    row of class logits)::

        L = λ · T² / A · Σ_i w_i · R_k [ q_ik (log q_ik − log p_ik) ],
        p_i = softmax(s_i / T),  q_i = softmax(t_i / T)

    ``R_k`` is the mean over the K bins (LD's setting) or their sum
    (CrossKD's on GFL), ``A`` the average factor. This is the
    ``KnowledgeDistillationKLDivLoss`` of the LD and CrossKD code; mmdet's
    own version has no ``class_reduction`` (it always averages the bins).
    Computed in fp32; the target is detached.
    With ``logit_standardization``, ``s ← Z(s)`` and ``t ← Z(t)`` first
    (:func:`standardize_logits`).

    Args:
        temperature: T (LD: 10; CrossKD: 1).
        bin_reduction: ``'mean'`` or ``'sum'`` over the K bins.
        loss_weight: λ.
        logit_standardization: Z-score each row of both logits first
            (:func:`standardize_logits`, Sun et al., CVPR 2024): for rows of
            class logits (LD's KD term); off by default.
    """

    def __init__(self, temperature: float = 10.0, bin_reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 logit_standardization: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}.')
        checked_choice('bin_reduction', bin_reduction, ('mean', 'sum'))
        self.temperature = temperature
        self.bin_reduction = bin_reduction
        self.loss_weight = loss_weight
        self.logit_standardization = bool(logit_standardization)

    def forward(self, pred: Tensor, target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Args:
            pred: (N, K) student logits.
            target: (N, K) teacher logits.
            weight: (N,) row weights, or ``None`` for ones.
            avg_factor: ``A``; ``None``: the number of rows.

        Returns:
            Tensor: The scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(f'DistributionKLLoss: prediction '
                             f'{tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} differ.')
        T = self.temperature
        pred, target = pred.float(), target.detach().float()
        if self.logit_standardization:
            pred, target = standardize_logits(pred), standardize_logits(target)
        log_p = F.log_softmax(pred / T, dim=-1)
        q = F.softmax(target / T, dim=-1)
        kl = F.kl_div(log_p, q, reduction='none')
        kl = kl.mean(-1) if self.bin_reduction == 'mean' else kl.sum(-1)
        if weight is not None:
            kl = kl * weight.float()
        total = kl.sum() / (avg_factor if avg_factor is not None
                            else max(kl.numel(), 1))
        return self.loss_weight * T * T * total
