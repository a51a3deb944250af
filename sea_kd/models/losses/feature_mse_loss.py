"""Plain feature imitation: mean squared error between feature maps."""
from __future__ import annotations

from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn


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
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(
                f'FeatureMSELoss needs the same non-zero number of levels, '
                f'got {len(student_feats)} student and {len(teacher_feats)} '
                'teacher levels.')
        per_level = []
        for level, (s, t) in enumerate(zip(student_feats, teacher_feats)):
            if s.shape != t.shape:
                raise ValueError(
                    f'Level {level}: student feature {tuple(s.shape)} and '
                    f'teacher feature {tuple(t.shape)} differ; adapt the '
                    'student channels (adapter) and use the same strides.')
            diff = s.float() - t.detach().float()
            per_level.append(diff.pow(2).mean())
        return self.loss_weight * torch.stack(per_level).mean()
