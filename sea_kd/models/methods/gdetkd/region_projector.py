"""A small head that turns region features into a region representation."""
from __future__ import annotations

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class RegionProjector(BaseModule):
    """Region features (K, C, h, w) -> representation (K, D).

    ``r = relu(W_2 · relu(W_1 · flatten(avgpool_p(x))))``: the two fully
    connected layers of mmdet's ``Shared2FCBBoxHead`` on a ``p × p`` average
    pooled feature. G-DetKD uses it for a dense student, which has no R-CNN
    head of its own, to give its (fused) RoI features a representation of
    the teacher's kind for the contrastive loss.

    Args:
        in_channels: C.
        out_channels: D (the teacher's representation size).
        pooled_size: p; the RoI features are average-pooled to p × p.
        init_cfg: Defaults to Xavier-uniform weights, as mmdet's bbox heads.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 pooled_size: int = 2,
                 init_cfg: OptMultiConfig = dict(
                     type='Xavier', layer='Linear',
                     distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        if pooled_size < 1:
            raise ValueError(f'pooled_size must be >= 1, got {pooled_size}.')
        self.pool = nn.AdaptiveAvgPool2d(pooled_size)
        self.fc1 = nn.Linear(in_channels * pooled_size**2, out_channels)
        self.fc2 = nn.Linear(out_channels, out_channels)
        self.relu = nn.ReLU()
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x).flatten(1)
        return self.relu(self.fc2(self.relu(self.fc1(x))))
