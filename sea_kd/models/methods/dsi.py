"""DSI: one student level projected onto a (foundation-model) teacher's
features, cosine loss (RT-DETRv4's Deep Semantic Injector)."""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from mmengine.logging import MMLogger
from torch import Tensor, nn

from ..adapters import build_level_adapters
from ..capture import DistillRecord
from ..detectors.pair_checks import neck_channels_of
from ..detectors.strides import prior_strides_of
from ..utils.precision import at_least_fp32
from .distill_method import DistillMethod


def student_level_of_stride(student: nn.Module, teacher: nn.Module,
                            teacher_level: int = -1) -> int:
    """The student neck level whose stride is nearest that of the teacher's
    map ``teacher_level``: equal, where a level has it; otherwise the
    nearest in ratio (logged: the teacher's map is resized to it); the
    student's last level when either model has no strides to tell (no
    prior generator: the DETR family; logged)."""
    s, t = prior_strides_of(student), prior_strides_of(teacher)
    if s is None or t is None:
        last = len(neck_channels_of(student)) - 1
        MMLogger.get_current_instance().info(
            'DSI: the pair has no strides to match levels by; the student\'s '
            f'last neck level ({last}) learns the teacher\'s map, resized to '
            'it.')
        return last
    stride = t[teacher_level]
    if stride in s:
        return s.index(stride)
    level = min(range(len(s)),
                key=lambda i: abs(math.log(s[i][0] / stride[0])))
    MMLogger.get_current_instance().warning(
        f'DSI: no student neck level has the teacher map\'s stride '
        f'{stride} (student strides {s}); level {level} (stride {s[level]}), '
        'the nearest, learns it resized. Set student_level to choose.')
    return level


@MODELS.register_module()
class DSI(DistillMethod):
    """DSI, the Deep Semantic Injector of RT-DETRv4 (Liao et al., arXiv
    2510.25257): a linear projection of one student level to the
    teacher's channels, taught the direction of the teacher's feature at
    each position.

    ``loss_dsi_feat`` is ``loss_feat`` (default :class:`CosineFeatureLoss`)
    between ``P(F_s)`` and ``resize(F_t)``::

        L_dsi = λ · mean_{b,h,w} (1 − cos(P(F_s)[b,:,h,w],
                                          resize(F_t)[b,:,h,w]))

    with ``P`` a 1×1 projection (the authors' ``nn.Linear`` on the encoder's
    deepest level) and ``resize`` bilinear interpolation of the teacher's map
    to the student level's size (``align_corners=False``), as the authors'
    criterion does when the sizes differ. The teacher is typically a
    :class:`~sea_kd.models.teachers.BackboneTeacher` (a DINOv2/DINOv3 ViT,
    or any backbone); a detector teacher's neck levels serve as well.

    Args:
        teacher_level: Index of the teacher's feature map (for a backbone
            teacher, its outputs; for a detector, its neck levels). ``-1``
            (default): the last, a ViT's final patch tokens.
        student_level: Index of the student's neck level; ``None``
            (default): the level of the teacher map's stride (RT-DETRv4
            pairs stride 32 with stride 32), or the student's last level
            when the pair has no strides to tell (a DETR-family student;
            logged); where no level has the teacher's stride, the nearest
            (logged; the teacher's map is resized to it).
        projector: Config of the projection (default a 1×1
            :class:`ConvAdapter`, PyTorch's default initialisation, as the
            authors' ``nn.Linear``).
        loss_feat: Config of the loss; default :class:`CosineFeatureLoss`
            with weight 5, the starting weight of the authors' RT-DETRv4-S
            config (their GAM adapts it during training; sea_kd's
            ``balance`` is the counterpart).
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'dsi'
    display_name = 'DSI'
    record_parts = ('neck', )

    def __init__(self,
                 teacher_level: int = -1,
                 student_level: Optional[int] = None,
                 projector: ConfigType = dict(type='ConvAdapter'),
                 loss_feat: ConfigType = dict(type='CosineFeatureLoss',
                                              loss_weight=5.0),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        for key, value in (('teacher_level', teacher_level),
                           ('student_level', student_level)):
            if value is not None and not isinstance(value, int):
                raise TypeError(f'{key} must be an int index, got '
                                f'{value!r}.')
        self._teacher_level = teacher_level
        self._student_level = student_level
        self._projector_cfg = projector
        self._loss_feat_cfg = loss_feat

    @staticmethod
    def _index(level: int, count: int, role: str) -> int:
        if not -count <= level < count:
            raise ValueError(f'{role}_level={level} is out of range: the '
                             f'{role} has {count} feature levels.')
        return level % count

    def setup(self) -> None:
        s_ch = neck_channels_of(self.student)
        t_ch = neck_channels_of(self.teacher)
        self.teacher_level = self._index(self._teacher_level, len(t_ch),
                                         'teacher')
        self.student_level = student_level_of_stride(
            self.student, self.teacher, self.teacher_level) \
            if self._student_level is None else \
            self._index(self._student_level, len(s_ch), 'student')
        self.projector = build_level_adapters(
            self._projector_cfg, [s_ch[self.student_level]],
            [t_ch[self.teacher_level]])[0]
        self.loss_feat = MODELS.build(self._loss_feat_cfg)

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        student = self.projector(
            at_least_fp32(record.student_neck[self.student_level]))
        teacher = record.teacher_neck[self.teacher_level].float()
        if teacher.shape[-2:] != student.shape[-2:]:
            teacher = F.interpolate(teacher, size=student.shape[-2:],
                                    mode='bilinear', align_corners=False)
        return dict(feat=self.loss_feat([student], [teacher]))
