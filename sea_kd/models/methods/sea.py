"""SEA: semantic-aware alignment distillation on neck features."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType
from torch import Tensor

from ..capture import DistillRecord
from ..detectors.pair_checks import neck_channels_of
from ..detectors.strides import StrideLike, normalize_strides, prior_strides_of
from .distill_method import DistillMethod, checked_level_matching
from .pair_requirement import NECK_LEVELS


@MODELS.register_module()
class SEA(DistillMethod):
    """Semantic-aware alignment (Chen et al., arXiv 2203.00862).

    ``loss_sea_rel (+ loss_sea_anc)``: :class:`SEALoss` on
    the neck features of teacher and student and the batch's ground truth.
    SEA reads only FPN features, boxes and (when the data has them)
    instance masks, so one code path serves one-stage (RetinaNet, FCOS) and
    two-stage (Faster R-CNN, Mask R-CNN) detectors.

    The relations are computed in each model's own feature space, so
    teacher and student may have different neck channels. Only the optional
    anchor-alignment term (``loss_sea.anchor_weight > 0``) compares features
    across the two models; then an adapter maps the student's anchors to the
    teacher's channels.

    Args:
        loss_sea: Config of :class:`SEALoss`.
        adapter: Config of the adapter of the student's anchors (default a
            1×1 :class:`ConvAdapter`), built with the student's and teacher's
            channels and only when the anchor term is enabled. It must be
            1×1 (it is applied to anchor vectors, which equals pooling the
            adapted features). ``None``: no adapter, which then requires
            equal channels.
        strides: Stride of every student neck level (number or
            ``(s_x, s_y)``). ``None`` (default): the student's prior
            generator's strides (``bbox_head`` or ``rpn_head``) when it has
            one per level, otherwise inferred per batch from the feature
            sizes and ``batch_input_shape``.
        level_matching: How the student levels of ``loss_sea.levels`` find
            their teacher level: ``'stride'`` (default) pairs each with the
            teacher level of the same stride, leaving out (and logging) the
            student levels without one, so that e.g. a Faster R-CNN teacher
            (P2–P6) teaches a RetinaNet student (P3–P7) on P3–P6;
            ``'index'`` pairs level ``i`` with level ``i`` and requires
            equal strides. The loss then sees the paired levels only, in
            order: the category anchors pool over them in each model.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'sea'
    display_name = 'SEA'
    pair_requirements = (NECK_LEVELS, )
    record_parts = ('neck', )

    def __init__(self,
                 loss_sea: ConfigType = dict(type='SEALoss'),
                 adapter: OptConfigType = dict(type='ConvAdapter'),
                 strides: Optional[Sequence[StrideLike]] = None,
                 level_matching: str = 'stride',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.level_matching = checked_level_matching(level_matching)
        self._loss_sea_cfg = loss_sea
        self._adapter_cfg = adapter
        self._strides_cfg = strides

    def setup(self) -> None:
        loss_sea, adapter = self._loss_sea_cfg, self._adapter_cfg
        strides = self._strides_cfg
        # the method picks the levels; the loss is handed the paired levels
        # only, in order, so it is built without a level choice of its own
        loss_sea = dict(loss_sea)
        chosen = loss_sea.pop('levels', None)
        self.loss_sea = MODELS.build(loss_sea)
        s_ch = neck_channels_of(self.student)
        t_ch = neck_channels_of(self.teacher)
        self.level_pairs = self.pair_levels(chosen, self.level_matching)
        levels = [i for i, _ in self.level_pairs]
        teacher_levels = [j for _, j in self.level_pairs]

        if strides is not None:
            self.strides = normalize_strides(strides)
            if len(self.strides) != len(s_ch):
                raise ValueError(f'{len(self.strides)} strides given for '
                                 f'{len(s_ch)} neck levels.')
        else:
            found = prior_strides_of(self.student)
            self.strides = found if found and len(found) == len(s_ch) \
                else None

        self.adapter = None
        if getattr(self.loss_sea, 'anchor_weight', 0) > 0:
            s_set = sorted({s_ch[i] for i in levels})
            t_set = sorted({t_ch[j] for j in teacher_levels})
            if len(s_set) > 1 or len(t_set) > 1:
                raise ValueError(
                    f'Category anchors pool over the levels {levels}, whose '
                    f'channels differ (student {s_set}, teacher {t_set}); '
                    'choose levels with one channel number.')
            if adapter is None:
                if s_set != t_set:
                    raise ValueError(
                        f'Anchor alignment compares student anchors '
                        f'({s_set[0]} channels) with teacher anchors '
                        f'({t_set[0]} channels) and no adapter is '
                        "configured; set `adapter=dict(type='ConvAdapter')` "
                        'or anchor_weight=0.')
            else:
                self.adapter = MODELS.build(
                    dict(adapter, in_channels=s_set[0],
                         out_channels=t_set[0]))
                kernel = getattr(getattr(self.adapter, 'conv', None),
                                 'kernel_size', (1, 1))
                if tuple(kernel) != (1, 1):
                    raise ValueError(
                        'The SEA anchor adapter is applied to anchor vectors '
                        f'and must be 1x1, got kernel_size {tuple(kernel)}.')

    def _adapt_anchors(self, anchors: Tensor) -> Tensor:
        """Student anchors (..., C_s) -> teacher channels (..., C_t)."""
        shape = anchors.shape
        out = self.adapter(anchors.reshape(-1, shape[-1], 1, 1))
        return out.reshape(*shape[:-1], out.shape[1])

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        strides = None if self.strides is None else \
            [self.strides[i] for i, _ in self.level_pairs]
        return self.loss_sea(
            [record.student_neck[i] for i, _ in self.level_pairs],
            [record.teacher_neck[j] for _, j in self.level_pairs],
            record.batch_gt_instances,
            record.batch_img_metas,
            strides=strides,
            anchor_adapter=self._adapt_anchors
            if self.adapter is not None else None)
