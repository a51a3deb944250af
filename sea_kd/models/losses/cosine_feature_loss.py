"""Cosine distance between feature maps, position by position."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from .paired_maps import paired_maps


@MODELS.register_module()
class CosineFeatureLoss(nn.Module):
    """One minus the cosine similarity of the student's and the teacher's
    feature vectors at each position, averaged (RT-DETRv4's distillation
    loss, ``loss_distillation`` in ``engine/rtv4/rtv4_criterion.py``).

    For levels ``l = 1..L`` with (projected) student maps ``S_l`` and
    teacher maps ``T_l`` of shape (B, C, H_l, W_l)::

        L_cos = λ · (1/L) · Σ_l mean_{b,h,w} (1 − cos(S_l[b,:,h,w],
                                                      T_l[b,:,h,w]))

    Only the directions of the feature vectors count, not their scale, so a
    teacher of another kind (a ViT's patch tokens) can teach a detector's
    features. Computed in fp32 whatever the input dtype; the teacher side is
    detached. A zero vector has cosine 0 with anything (``F.cosine_
    similarity``'s ε = 1e-8).

    Args:
        loss_weight: λ.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor]) -> Tensor:
        per_level = [
            (1 - F.cosine_similarity(s.float(), t.detach().float(),
                                     dim=1)).mean()
            for s, t in paired_maps('CosineFeatureLoss', student_feats,
                                    teacher_feats)
        ]
        return self.loss_weight * torch.stack(per_level).mean()
