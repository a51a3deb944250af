"""CrossKD's classification term: quality focal loss towards the teacher's
probabilities."""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn
from torch.nn import functional as F

from .blocked_row_sum import BlockedRowSum
from .logit_standardization import standardize_logits


@MODELS.register_module()
class KDQualityFocalLoss(nn.Module):
    """Quality focal loss with the teacher's sigmoid probabilities as soft
    targets (CrossKD, Wang et al., CVPR 2024; ``KDQualityFocalLoss`` of
    jbwang1997/CrossKD@87e156a, ``mmdet/models/losses/kd_loss.py``)::

        L = λ / A · Σ_i w_i Σ_c BCE(σ(s_ic), p_ic) · |σ(s_ic) − p_ic|^β,
        p_ic = σ(t_ic)

    with ``s`` the student's (here: the cross-head) logits, ``t`` the
    teacher's, ``w_i`` a per-row weight (the label weights) and ``A`` the
    average factor. Computed in fp32; the target is detached. At COCO
    scale the rows are every anchor of the batch (about 4·10⁵ × 80 for
    RetinaNet), so the element-wise terms run in row blocks with their
    gradient in closed form (:class:`BlockedRowSum`).
    With ``logit_standardization``, ``s ← Z(s)`` and ``t ← Z(t)`` first
    (:func:`standardize_logits`).

    Args:
        beta: β, the focusing exponent (the authors use 1).
        loss_weight: λ.
        logit_standardization: Z-score the student's and the teacher's
            logits over the classes first (:func:`standardize_logits`, Sun
            et al., CVPR 2024); off by default.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0,
                 logit_standardization: bool = False) -> None:
        super().__init__()
        self.beta = beta
        self.loss_weight = loss_weight
        self.logit_standardization = bool(logit_standardization)

    def forward(self, pred: Tensor, target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Args:
            pred: (N, C) logits.
            target: (N, C) teacher logits.
            weight: (N,) row weights, or ``None`` for ones; a constant
                (no gradient reaches it).
            avg_factor: ``A``; ``None`` averages over the N·C elements.

        Returns:
            Tensor: The scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(f'KDQualityFocalLoss: prediction '
                             f'{tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} differ.')
        pred, target = pred.float(), target.detach().float()
        if self.logit_standardization:
            pred, target = standardize_logits(pred), standardize_logits(target)
        row_weight = None if weight is None else weight.float()
        total = BlockedRowSum.apply(
            pred, row_weight, functools.partial(_qfl_terms, beta=self.beta),
            target.sigmoid())
        normaliser = avg_factor if avg_factor is not None else pred.numel()
        return self.loss_weight * total / normaliser


def _qfl_terms(z: Tensor, p: Tensor, beta: float,
               grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """``BCE(σ(z), p)·|σ(z) − p|^β`` per element and, when ``grad``, its
    derivative in ``z``.

    With ``s = σ(z)`` and ``d = s − p``: ``BCE = sp(z) − p·z``
    (``sp(x) = log(1 + eˣ)``) with ``∂BCE/∂z = d``, and
    ``∂|d|^β/∂z = β·|d|^(β−1)·sign(d)·s·(1 − s)``, taken as 0 where
    ``d = 0`` (as autograd gives for ``β = 1`` and ``β = 0``).
    """
    bce = F.binary_cross_entropy_with_logits(z, p, reduction='none')
    s = torch.sigmoid(z)
    d = s - p
    focus = d.abs().pow(beta)
    if not grad:
        return bce * focus, None
    # 0 where d = 0 (the power's derivative there: 0 for β > 1, autograd's
    # choice for β = 1 and β = 0, infinite for 0 < β < 1)
    d_focus = torch.where(
        d == 0, torch.zeros_like(d),
        beta * d.abs().pow(beta - 1) * torch.sign(d)) * s * (1 - s)
    return bce * focus, d * focus + bce * d_focus
