"""PKD: feature imitation through the Pearson correlation coefficient."""
from __future__ import annotations

from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .paired_maps import paired_maps


def standardize_channels(x: Tensor, eps: float) -> Tensor:
    """``(x − μ_c) / (σ_c + ε)`` with ``μ_c``, ``σ_c`` the mean and the
    unbiased standard deviation of channel ``c`` over (N, H, W); ``σ_c = 0``
    where the channel has one value."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, keepdim=True) if flat.shape[1] > 1 else \
        torch.zeros_like(mean)
    out = (flat - mean) / (std + eps)
    return out.reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)


@MODELS.register_module()
class PKDLoss(nn.Module):
    """Pearson-correlation feature imitation (PKD, Cao et al., NeurIPS
    2022).

    Each channel of each level is standardised over the batch and the
    positions, in the student and in the teacher, and the standardised maps
    are compared by MSE; this equals ``1 − r`` per channel, ``r`` the
    Pearson correlation of the two maps (up to the ε and the unbiased σ)::

        L_pkd = λ · Σ_l ½ · mean_{n,c,h,w} (ẑ^s_l − ẑ^t_l)²,
        ẑ_l[n, c] = (F_l[n, c] − μ_{l,c}) / (σ_{l,c} + ε)

    with ``μ_{l,c}``, ``σ_{l,c}`` (unbiased) over (N, H, W). Levels are
    summed, as the authors' per-level losses are. Computed in fp32 whatever
    the input dtype; the teacher side is detached.

    Args:
        loss_weight: λ (the authors use 6 for Faster R-CNN, 10 for
            RetinaNet and FCOS students).
        eps: ε.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor]) -> Tensor:
        total = 0.
        for s, t in paired_maps('PKDLoss', student_feats, teacher_feats):
            z_s = standardize_channels(s.float(), self.eps)
            z_t = standardize_channels(t.detach().float(), self.eps)
            total = total + 0.5 * (z_s - z_t).pow(2).mean()
        return self.loss_weight * total
