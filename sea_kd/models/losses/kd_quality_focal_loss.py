"""CrossKD's classification term: quality focal loss towards the teacher's
probabilities."""
from __future__ import annotations

from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor, nn
from torch.nn import functional as F

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
    average factor. Computed in fp32; the target is detached.
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
            weight: (N,) row weights, or ``None`` for ones.
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
        prob = target.sigmoid()
        loss = F.binary_cross_entropy_with_logits(pred, prob, reduction='none')
        loss = loss * (pred.sigmoid() - prob).abs().pow(self.beta)
        if weight is not None:
            loss = loss * weight.float()[:, None]
        total = loss.sum() / avg_factor if avg_factor is not None \
            else loss.mean()
        return self.loss_weight * total
