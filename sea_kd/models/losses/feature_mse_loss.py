"""Plain feature imitation: mean squared error between feature maps."""
from __future__ import annotations

from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .paired_maps import paired_maps


@MODELS.register_module()
class FeatureMSELoss(nn.Module):
    """Mean squared error between (adapted) student and teacher features.

    For levels ``l = 1..L`` with student features ``S_l`` (already adapted to
    the teacher's channels) and teacher features ``T_l`` of shape
    (B, C, H_l, W_l)::

        L_feat = λ · (1/L) · Σ_l mean_{b,c,h,w} (S_l − T_l)²

    Computed in fp32 whatever the input dtype; the teacher side is detached.

    Args:
        loss_weight: λ.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor]) -> Tensor:
        per_level = [(s.float() - t.detach().float()).pow(2).mean()
                     for s, t in paired_maps('FeatureMSELoss', student_feats,
                                             teacher_feats)]
        return self.loss_weight * torch.stack(per_level).mean()
