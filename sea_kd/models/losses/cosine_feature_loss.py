"""Cosine distance between feature maps, position by position."""
from __future__ import annotations

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .paired_maps import LevelMeanLoss


@MODELS.register_module()
class CosineFeatureLoss(LevelMeanLoss):
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

    def level_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        return (1 - F.cosine_similarity(student, teacher, dim=1)).mean()
