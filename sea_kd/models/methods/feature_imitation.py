"""Plain feature imitation on neck features: the baseline to beat."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType
from torch import Tensor

from ..adapters import build_level_adapters
from ..capture import DistillRecord
from ..distillers.pair_checks import (check_same_levels, check_same_strides,
                                      neck_channels_of)
from ..utils.precision import at_least_fp32
from .distill_method import DistillMethod


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
        levels: Indices of the neck levels to imitate; ``None`` for all.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'fi'
    record_parts = ('neck', )

    def __init__(self,
                 loss_feat: ConfigType = dict(type='FeatureMSELoss',
                                              loss_weight=1.0),
                 adapter: OptConfigType = dict(type='ConvAdapter'),
                 levels: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._loss_feat_cfg = loss_feat
        self._adapter_cfg = adapter
        self._levels_cfg = levels

    def setup(self) -> None:
        check_same_levels(self.student, self.teacher)
        s_ch = neck_channels_of(self.student)
        t_ch = neck_channels_of(self.teacher)
        levels = self._levels_cfg
        self.levels = list(range(len(s_ch))) if levels is None else \
            list(levels)
        if any(not 0 <= i < len(s_ch) for i in self.levels):
            raise ValueError(f'levels {self.levels} out of range for '
                             f'{len(s_ch)} neck levels.')
        check_same_strides(self.student, self.teacher, self.levels)
        s_ch = [s_ch[i] for i in self.levels]
        t_ch = [t_ch[i] for i in self.levels]
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
        student = [at_least_fp32(record.student_neck[i]) for i in self.levels]
        teacher = [record.teacher_neck[i] for i in self.levels]
        if self.adapters is not None:
            student = [adapt(f) for adapt, f in zip(self.adapters, student)]
        return dict(feat=self.loss_feat(student, teacher))
