"""PKD: Pearson-correlation imitation of the neck features."""
from __future__ import annotations

from typing import Optional, Sequence

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType

from .feature_imitation import FeatureImitation


@MODELS.register_module()
class PKD(FeatureImitation):
    """PKD (Cao et al., NeurIPS 2022): neck features imitated through the
    Pearson correlation coefficient.

    ``loss_pkd_feat`` is :class:`PKDLoss` between the (optionally adapted)
    student levels and the teacher's: each channel standardised over the
    batch and positions, then MSE. Magnitudes do not matter, so a
    heterogeneous teacher (another head, another assignment) can teach.

    Args:
        loss_feat: Config of the loss (default :class:`PKDLoss` with the
            authors' Faster R-CNN weight, 6).
        adapter: Per-level adapter of the student's channels; ``None`` (the
            authors: the necks have the same channels) requires equal
            channels.
        levels: Indices of the neck levels; ``None`` for all. The authors'
            configs use the first four.
        **kwargs: ``level_matching`` (:class:`FeatureImitation`),
            ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'pkd'
    display_name = 'PKD'

    def __init__(self,
                 loss_feat: ConfigType = dict(type='PKDLoss',
                                              loss_weight=6.0),
                 adapter: OptConfigType = None,
                 levels: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        super().__init__(loss_feat=loss_feat, adapter=adapter,
                         levels=levels, **kwargs)
