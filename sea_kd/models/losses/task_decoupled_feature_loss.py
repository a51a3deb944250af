"""TFD: TBD's task-decoupled feature distillation on neck features."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice

TASK_WEIGHTS = ('dynamic', 'fixed')
NORMALIZERS = ('joint', 'per_task')
CLS_MASK_NORMS = ('max', 'none')
REG_MASKS = ('harmony', 'iou')

Number = Union[float, Tensor]


@MODELS.register_module()
class TFDLoss(nn.Module):
    r"""Task-decoupled feature distillation with task-balanced masks.

    For neck levels ``l`` with (adapted) student features ``S_l`` and teacher
    features ``T_l`` of shape (B, C_l, H_l, W_l), a classification mask
    ``M^cls_l`` and a regression mask ``M^reg_l`` of shape (B, H_l, W_l),
    and per-location squared error averaged over channels
    ``d_l = (1/C_l)·Σ_c (S_l − T_l)²``::

        W_l = λ_cls·M^cls_l + λ_reg·M^reg_l
        L   = λ · Σ_l Σ_{b,h,w} W_l·d_l / max(Σ_l Σ_{b,h,w} W_l, ε)
                                                    (normalizer='joint')
        L   = λ · Σ_k λ_k · Σ_l Σ_{b,h,w} M^k_l·d_l / max(Σ M^k, ε)
                                                    (normalizer='per_task')

    With the joint normaliser only the ratio λ_cls : λ_reg matters. The
    channel average (rather than the channel sum) only rescales ``L`` by a
    constant per level; ``loss_weight`` absorbs it.

    Task weights (``task_weights``):

    - ``'dynamic'``: from the detached sizes of the student's own
      classification and regression losses ``L_cls``, ``L_reg``::

          λ_cls = 2·L_cls / (L_cls + L_reg)   λ_reg = 2·L_reg / (L_cls + L_reg)

      so the task with the larger loss gets the larger weight (1 and 1 when
      both are 0).
    - ``'fixed'``: ``(λ_cls, λ_reg) = fixed_weights``.

    Masks (built by :meth:`classification_masks` and
    :meth:`regression_masks` from the teacher's dense outputs):

    - ``M^cls``: the teacher's largest class probability at each location
      (over anchors and classes), divided by its maximum over the level per
      image (``cls_mask_norm='max'``) or left as is (``'none'``).
    - ``M^reg``: the teacher's harmony score (``reg_mask='harmony'``) or IoU
      (``'iou'``) at the student's positive positions, the largest over the
      anchors of a location, 0 elsewhere.

    Computed in fp32 (fp64 stays fp64), autocast off; the teacher features
    and both masks are detached.

    Args:
        task_weights: ``'dynamic'`` (default) or ``'fixed'``.
        fixed_weights: ``(λ_cls, λ_reg)`` for ``'fixed'``.
        normalizer: ``'joint'`` (default) or ``'per_task'``.
        cls_mask_norm: ``'max'`` (default) or ``'none'``.
        reg_mask: ``'harmony'`` (default) or ``'iou'``; read by the
            distiller, which builds the regression mask from it.
        eps: Floor of the normalisers.
        loss_weight: λ.
    """

    def __init__(self,
                 task_weights: str = 'dynamic',
                 fixed_weights: Sequence[float] = (1.0, 1.0),
                 normalizer: str = 'joint',
                 cls_mask_norm: str = 'max',
                 reg_mask: str = 'harmony',
                 eps: float = 1e-6,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        for name, value, allowed in (
            ('task_weights', task_weights, TASK_WEIGHTS),
            ('normalizer', normalizer, NORMALIZERS),
            ('cls_mask_norm', cls_mask_norm, CLS_MASK_NORMS),
            ('reg_mask', reg_mask, REG_MASKS),
        ):
            checked_choice(name, value, allowed)
        fixed_weights = tuple(float(w) for w in fixed_weights)
        if len(fixed_weights) != 2 or min(fixed_weights) < 0 \
                or sum(fixed_weights) <= 0:
            raise ValueError(
                'fixed_weights must be two non-negative numbers (λ_cls, '
                f'λ_reg), not both 0; got {fixed_weights}.')
        self.task_weights = task_weights
        self.fixed_weights = fixed_weights
        self.normalizer = normalizer
        self.cls_mask_norm = cls_mask_norm
        self.reg_mask = reg_mask
        self.eps = eps
        self.loss_weight = loss_weight

    # ----------------------------------------------------------------- weights
    def task_weights_from(
            self, task_losses: Optional[Tuple[Number, Number]] = None
    ) -> Tuple[Number, Number]:
        """``(λ_cls, λ_reg)``; ``task_losses = (L_cls, L_reg)`` is needed
        (and detached) for ``task_weights='dynamic'``."""
        if self.task_weights == 'fixed':
            return self.fixed_weights
        if task_losses is None or len(task_losses) != 2:
            raise ValueError(
                "TFDLoss(task_weights='dynamic') needs task_losses=(L_cls, "
                "L_reg), the student's own classification and regression "
                "losses; pass them or set task_weights='fixed'.")
        l_cls, l_reg = (torch.as_tensor(v).detach().float().sum()
                        for v in task_losses)
        total = l_cls + l_reg
        if total <= 0 or not torch.isfinite(total):
            one = torch.ones_like(total)
            return one, one
        return 2 * l_cls / total, 2 * l_reg / total

    # ------------------------------------------------------------------- masks
    @torch.no_grad()
    def classification_masks(
            self, teacher_cls_scores: Sequence[Tensor]) -> List[Tensor]:
        """``M^cls`` per level (B, H, W) from the teacher's (B, A*C, H, W)
        sigmoid class logits."""
        masks = []
        for scores in teacher_cls_scores:
            mask = scores.detach().float().sigmoid().amax(dim=1)
            if self.cls_mask_norm == 'max':
                peak = mask.flatten(1).amax(dim=1).clamp(min=self.eps)
                mask = mask / peak[:, None, None]
            masks.append(mask)
        return masks

    @torch.no_grad()
    def regression_masks(self, values: Sequence[Tensor],
                         featmap_sizes: Sequence[Tuple[int, int]]
                         ) -> List[Tensor]:
        """``M^reg`` per level (B, H, W) from per-position values (B, N_l)
        ordered H → W → anchor (0 off the positives): max over anchors."""
        masks = []
        for level, (value, (h, w)) in enumerate(zip(values, featmap_sizes)):
            batch, num = value.shape
            if num % (h * w):
                raise ValueError(
                    f'Level {level}: {num} positions do not fill a {h}x{w} '
                    'map with a whole number of anchors.')
            masks.append(value.detach().float().reshape(
                batch, h, w, num // (h * w)).amax(dim=-1))
        return masks

    # ------------------------------------------------------------------- loss
    def forward(self,
                student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                cls_masks: Sequence[Tensor],
                reg_masks: Sequence[Tensor],
                task_losses: Optional[Tuple[Number, Number]] = None
                ) -> Tensor:
        """Compute ``L_TFD``.

        Args:
            student_feats: Per level (B, C, H, W), adapted to the teacher's
                channels.
            teacher_feats: Per level (B, C, H, W).
            cls_masks: Per level (B, H, W), ``M^cls``.
            reg_masks: Per level (B, H, W), ``M^reg``.
            task_losses: ``(L_cls, L_reg)`` for ``task_weights='dynamic'``.

        Returns:
            Tensor: The scalar loss.
        """
        num = len(student_feats)
        if not num or any(len(x) != num for x in (teacher_feats, cls_masks,
                                                   reg_masks)):
            raise ValueError(
                'TFDLoss needs the same non-zero number of levels of student '
                f'features ({len(student_feats)}), teacher features '
                f'({len(teacher_feats)}), cls masks ({len(cls_masks)}) and '
                f'reg masks ({len(reg_masks)}).')
        for level, (s, t, mc, mr) in enumerate(
                zip(student_feats, teacher_feats, cls_masks, reg_masks)):
            if s.shape != t.shape:
                raise ValueError(
                    f'Level {level}: student feature {tuple(s.shape)} and '
                    f'teacher feature {tuple(t.shape)} differ; adapt the '
                    'student channels (adapter) and use the same strides.')
            expected = (s.shape[0], ) + tuple(s.shape[2:])
            if tuple(mc.shape) != expected or tuple(mr.shape) != expected:
                raise ValueError(
                    f'Level {level}: masks must have shape {expected}, got '
                    f'{tuple(mc.shape)} and {tuple(mr.shape)}.')
        lambda_cls, lambda_reg = self.task_weights_from(task_losses)
        with torch.autocast(student_feats[0].device.type, enabled=False):
            dtype = torch.promote_types(student_feats[0].dtype,
                                        torch.float32)
            # all levels as one (B, N) map, positions ordered level → H → W
            errors = torch.cat([
                (s.to(dtype) - t.detach().to(dtype)).pow(2).mean(1).flatten(1)
                for s, t in zip(student_feats, teacher_feats)], dim=1)
            m_cls = torch.cat([m.detach().to(dtype).flatten(1)
                               for m in cls_masks], dim=1)
            m_reg = torch.cat([m.detach().to(dtype).flatten(1)
                               for m in reg_masks], dim=1)
            if self.normalizer == 'joint':
                loss = self._weighted_mean(
                    errors, lambda_cls * m_cls + lambda_reg * m_reg)
            else:
                loss = lambda_cls * self._weighted_mean(errors, m_cls) + \
                    lambda_reg * self._weighted_mean(errors, m_reg)
            return self.loss_weight * loss

    def _weighted_mean(self, errors: Tensor, weights: Tensor) -> Tensor:
        return (weights * errors).sum() / weights.sum().clamp(min=self.eps)
