"""FGD: focal and global distillation of the neck features."""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence

from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import Tensor, nn

from ..capture import DistillRecord
from ..detectors.pair_checks import neck_channels_of
from ..detectors.strides import StrideLike, normalize_strides, prior_strides_of
from ..losses.focal_global_loss import (GlobalContextBlock, attention_loss,
                                        fgd_attention, focal_box_masks,
                                        focal_feature_loss, global_loss)
from ..utils.category_masks import infer_strides, pad_instances
from ..utils.precision import at_least_fp32
from ..utils.teacher_inheriting import inherit_teacher_weights
from .distill_method import DistillMethod, checked_level_matching
from .pair_requirement import NECK_LEVELS


class FGDLevel(nn.Module):
    """The trained parts of FGD at one level: a 1×1 alignment of the
    student's channels to the teacher's (only when they differ) and the
    global-context blocks of the student and of the teacher feature."""

    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.align = None if student_channels == teacher_channels else \
            nn.Conv2d(student_channels, teacher_channels, 1)
        self.context_student = GlobalContextBlock(teacher_channels)
        self.context_teacher = GlobalContextBlock(teacher_channels)


@MODELS.register_module()
class FGD(DistillMethod):
    """FGD (Yang et al., CVPR 2022): focal and global distillation of the
    neck features.

    Per level, with the student feature ``F^S`` aligned to the teacher's
    channels, the teacher's attention ``A^S, A^C`` and the area-scaled box
    masks ``M^fg, M^bg`` (:mod:`~sea_kd.models.losses.focal_global_loss`)::

        loss_fgd_fg        = α Σ_l L_fg       (foreground, attention-weighted)
        loss_fgd_bg        = β Σ_l L_bg       (background, attention-weighted)
        loss_fgd_attention = γ Σ_l L_at       (student attention → teacher's)
        loss_fgd_global    = λ Σ_l L_global   (GcBlock relations)

    The teacher feature carries no gradient; its global-context block is
    trained (as in the authors' code). The alignment and both blocks are
    dropped at export.

    Args:
        temperature: ``T`` of the attention (the authors: 0.5; 0.8 for
            FCOS).
        relative_temperature: Take ``T`` relative to each feature map's
            mean ``|F|`` (per image and level, for the teacher's and the
            student's attention alike; :func:`fgd_attention`), so that the
            attention does not depend on the features' scale. Not in the
            paper, whose absolute ``T`` was set on COCO's features: on a
            teacher with larger features (the RetinaNet demo teacher's
            mean ``|F|`` is 1.7 to 29 by level) an absolute 0.5 puts 90 %
            of the channel attention on a single one of 128 channels.
        alpha_fg: α (RetinaNet configs of the authors: 1e-3; two-stage:
            5e-5).
        beta_bg: β (5e-4; two-stage 2.5e-5).
        gamma_attention: γ (5e-4; two-stage 5e-5).
        lambda_global: λ (5e-6; two-stage 5e-7).
        levels: Indices of the student's neck levels; ``None`` for all (the
            authors' one-stage configs; their two-stage configs use the
            first four).
        level_matching: ``'stride'`` (default) pairs each student level
            with the teacher level of the same stride, leaving out (and
            logging) the student levels without one; ``'index'`` pairs
            level ``i`` with level ``i`` and requires equal strides
            (:class:`FeatureImitation`).
        strides: Stride per neck level; ``None``: the student's prior
            generator, else inferred from the padded input size.
        inherit_teacher: Deprecated: set ``inherit_teacher=True`` on the
            ``Distiller`` instead (the same inheriting strategy, for any
            method); here it still applies it, with a logged warning. Both
            at once are refused.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'fgd'
    display_name = 'FGD'
    pair_requirements = (NECK_LEVELS, )
    record_parts = ('neck', )

    def __init__(self,
                 temperature: float = 0.5,
                 relative_temperature: bool = False,
                 alpha_fg: float = 1e-3,
                 beta_bg: float = 5e-4,
                 gamma_attention: float = 5e-4,
                 lambda_global: float = 5e-6,
                 levels: Optional[Sequence[int]] = None,
                 level_matching: str = 'stride',
                 strides: Optional[Sequence[StrideLike]] = None,
                 inherit_teacher: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.level_matching = checked_level_matching(level_matching)
        if temperature <= 0:
            raise ValueError(f'FGD temperature must be positive, got '
                             f'{temperature}.')
        self.temperature = temperature
        self.relative_temperature = bool(relative_temperature)
        self.weights = dict(fg=alpha_fg, bg=beta_bg,
                            attention=gamma_attention, **{
                                'global': lambda_global})
        if inherit_teacher:
            print_log(
                "FGD(inherit_teacher=True) is deprecated: set "
                "inherit_teacher=True on the Distiller (model = dict("
                "type='Distiller', ..., inherit_teacher=True)), which "
                'applies the same inheriting strategy for any method.',
                logger='current', level=logging.WARNING)
        self.inherit_teacher = inherit_teacher
        self._levels_cfg = levels
        self._strides_cfg = strides

    def setup(self) -> None:
        s_ch = neck_channels_of(self.student)
        t_ch = neck_channels_of(self.teacher)
        if self._levels_cfg is not None and not list(self._levels_cfg):
            raise ValueError('FGD levels is empty; give neck level indices '
                             'or None for all.')
        self.level_pairs = self.pair_levels(self._levels_cfg,
                                            self.level_matching)
        self.levels: List[int] = [i for i, _ in self.level_pairs]
        if self._strides_cfg is not None:
            strides = normalize_strides(self._strides_cfg)
            if len(strides) != len(s_ch):
                raise ValueError(f'{len(strides)} strides given for '
                                 f'{len(s_ch)} neck levels.')
        else:
            strides = prior_strides_of(self.student)
            if strides is not None and len(strides) != len(s_ch):
                strides = None
        self.strides = strides
        self.level_modules = nn.ModuleList(
            FGDLevel(s_ch[i], t_ch[j]) for i, j in self.level_pairs)

    def init_student(self) -> None:
        """The inheriting strategy: the teacher's neck and heads, where
        they fit."""
        self.inherited_params = []
        if self.inherit_teacher:
            self.inherited_params = inherit_teacher_weights(self.student,
                                                            self.teacher)

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        student = [at_least_fp32(record.student_neck[i]) for i in self.levels]
        teacher = [record.teacher_neck[j].detach().float()
                   for _, j in self.level_pairs]
        strides = self.strides
        if strides is None:
            neck = record.student_neck
            strides = infer_strides(
                [f.shape[-2:] for f in neck],
                record.batch_img_metas[0]['batch_input_shape'])
        boxes, _, valid = pad_instances(record.batch_gt_instances,
                                        student[0].device)
        totals = dict.fromkeys(self.weights, 0.)
        for level, modules, s, t in zip(self.levels, self.level_modules,
                                        student, teacher):
            if modules.align is not None:
                s = modules.align(s)
            if s.shape != t.shape:
                raise ValueError(
                    f'FGD compares student level {level} '
                    f'{tuple(s.shape)} (aligned) with the teacher\'s '
                    f'{tuple(t.shape)} position by position; use necks of '
                    'the same strides.')
            spatial_t, channel_t = fgd_attention(t, self.temperature,
                                                 self.relative_temperature)
            spatial_s, channel_s = fgd_attention(s, self.temperature,
                                                 self.relative_temperature)
            fg, bg = focal_box_masks(boxes, valid, tuple(s.shape[-2:]),
                                     strides[level])
            loss_fg, loss_bg = focal_feature_loss(s, t, fg, bg, spatial_t,
                                                  channel_t)
            totals['fg'] = totals['fg'] + loss_fg
            totals['bg'] = totals['bg'] + loss_bg
            totals['attention'] = totals['attention'] + attention_loss(
                spatial_s, channel_s, spatial_t, channel_t)
            totals['global'] = totals['global'] + global_loss(
                s, t, modules.context_student, modules.context_teacher)
        return {term: self.weights[term] * value
                for term, value in totals.items()}
