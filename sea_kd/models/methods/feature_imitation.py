"""Plain feature imitation on neck features: the baseline to beat."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType
from torch import Tensor

from ..adapters import build_level_adapters
from ..capture import DistillRecord
from ..detectors.pair_checks import neck_channels_of
from ..utils.precision import at_least_fp32
from .distill_method import DistillMethod, checked_level_matching
from .pair_requirement import NECK_LEVELS


@MODELS.register_module()
class FeatureImitation(DistillMethod):
    """FitNets-style imitation of the teacher's neck features.

    ``loss_fi_feat`` is ``loss_feat`` (default :class:`FeatureMSELoss`)
    between ``φ_l(F_l^s)`` and ``F_l^t`` on the chosen neck levels, ``φ_l``
    a per-level adapter.

    Args:
        loss_feat: Config of the feature loss.
        adapter: Config of the per-level adapter (default a 1x1
            :class:`ConvAdapter`), built with the student's and teacher's
            channels. ``None`` means no adapter, which requires equal
            channels.
        levels: Indices of the student's neck levels to imitate; ``None``
            for all.
        level_matching: How student levels find their teacher level:
            ``'stride'`` (default) pairs each with the teacher level of the
            same stride (from the dense prior generators; by index when
            either has none), logging the student levels without one, so
            that e.g. a Faster R-CNN teacher (P2–P6) teaches a RetinaNet
            student (P3–P7) on P3–P6; ``'index'`` pairs level ``i`` with
            level ``i`` and requires equal strides. For pairs of equal
            strides both give the same pairs.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'fi'
    display_name = 'FI'
    pair_requirements = (NECK_LEVELS, )
    record_parts = ('neck', )

    def __init__(self,
                 loss_feat: ConfigType = dict(type='FeatureMSELoss',
                                              loss_weight=1.0),
                 adapter: OptConfigType = dict(type='ConvAdapter'),
                 levels: Optional[Sequence[int]] = None,
                 level_matching: str = 'stride',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.level_matching = checked_level_matching(level_matching)
        self._loss_feat_cfg = loss_feat
        self._adapter_cfg = adapter
        self._levels_cfg = levels

    def setup(self) -> None:
        s_all = neck_channels_of(self.student)
        t_all = neck_channels_of(self.teacher)
        self.level_pairs = self.pair_levels(self._levels_cfg,
                                            self.level_matching)
        self.levels = [i for i, _ in self.level_pairs]
        s_ch = [s_all[i] for i, _ in self.level_pairs]
        t_ch = [t_all[j] for _, j in self.level_pairs]
        if self._adapter_cfg is None:
            if s_ch != t_ch:
                raise ValueError(
                    f'Student neck channels {s_ch} differ from the teacher\'s '
                    f'{t_ch} and no adapter is configured; set `adapter='
                    "dict(type='ConvAdapter')` or give both necks the same "
                    '`out_channels`.')
            self.adapters = None
        else:
            self.adapters = build_level_adapters(self._adapter_cfg, s_ch,
                                                 t_ch)
        self.loss_feat = MODELS.build(self._loss_feat_cfg)

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        # fp32 also for the adapters: autocast is off here (AMP)
        student = [at_least_fp32(record.student_neck[i])
                   for i, _ in self.level_pairs]
        teacher = [record.teacher_neck[j] for _, j in self.level_pairs]
        if self.adapters is not None:
            student = [adapt(f) for adapt, f in zip(self.adapters, student)]
        return dict(feat=self.loss_feat(student, teacher))
