"""Feature imitation at chosen positions: mean squared error between
feature maps, averaged over the positions of a mask per level."""
from __future__ import annotations

from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .paired_maps import paired_maps


@MODELS.register_module()
class MaskedFeatureMSELoss(nn.Module):
    """Mean squared error between (adapted) student and teacher features at
    the masked positions of each level, summed over the levels.

    For levels ``l`` with student features ``S_l`` (already adapted to the
    teacher's channels) and teacher features ``T_l`` of shape
    (B, C, H_l, W_l), and masks ``M_l`` (B, H_l, W_l)::

        L = λ · Σ_{l: |M_l| > 0} 1 / (|M_l| · C) · Σ_{(b,h,w) ∈ M_l} Σ_c
            (S_l[b,c,h,w] − T_l[b,c,h,w])²

    the per-level ``F.mse_loss`` of the selected positions, as LD's
    imitation term (``IMLoss``, HikariTJU/LD) computes it per level. A level
    without a masked position adds nothing. Computed in fp32 whatever the
    input dtype; the teacher side is detached.

    Args:
        loss_weight: λ.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor],
                masks: Sequence[Tensor]) -> Tensor:
        pairs = paired_maps('MaskedFeatureMSELoss', student_feats,
                            teacher_feats)
        if len(masks) != len(pairs):
            raise ValueError(f'MaskedFeatureMSELoss got {len(pairs)} levels '
                             f'of features but {len(masks)} masks.')
        channels = {s.shape[1] for s, _ in pairs}
        if len(channels) != 1:
            raise ValueError('MaskedFeatureMSELoss needs the same channels '
                             f'at every level, got {sorted(channels)}.')
        for (s, _), m in zip(pairs, masks):
            if m.shape != (s.shape[0], *s.shape[2:]):
                raise ValueError(
                    f'A mask of shape {tuple(m.shape)} for features of shape '
                    f'{tuple(s.shape)}: it must be (B, H, W).')
        # every level's positions in one (B, C, N) map, then per-level sums
        s = torch.cat([s.float().flatten(2) for s, _ in pairs], dim=2)
        t = torch.cat([t.detach().float().flatten(2) for _, t in pairs],
                      dim=2)
        mask = torch.cat([m.flatten(1) for m in masks], dim=1).bool()
        level = torch.repeat_interleave(
            torch.arange(len(pairs), device=s.device),
            torch.tensor([m[0].numel() for m in masks], device=s.device))
        error = (s - t).pow(2).sum(dim=1)[mask]            # (P, )
        level = level.expand_as(mask)[mask]
        sums = torch.zeros(len(pairs), device=s.device).index_add(
            0, level, error)
        counts = torch.bincount(level, minlength=len(pairs))
        per_level = sums / (counts.clamp(min=1) * channels.pop())
        return self.loss_weight * per_level.sum()
