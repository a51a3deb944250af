"""Plain feature imitation: mean squared error between feature maps."""
from __future__ import annotations

from mmdet.registry import MODELS
from torch import Tensor

from .paired_maps import LevelMeanLoss


@MODELS.register_module()
class FeatureMSELoss(LevelMeanLoss):
    """Mean squared error between (adapted) student and teacher features.

    For levels ``l = 1..L`` with student features ``S_l`` (already adapted to
    the teacher's channels) and teacher features ``T_l`` of shape
    (B, C, H_l, W_l)::

        L_feat = λ · (1/L) · Σ_l mean_{b,c,h,w} (S_l − T_l)²

    Computed in fp32 whatever the input dtype; the teacher side is detached.

    Args:
        loss_weight: λ.
    """

    def level_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        return (student - teacher).pow(2).mean()
