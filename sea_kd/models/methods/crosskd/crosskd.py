"""CrossKD: the student's head features through the teacher's head."""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor

from ...adapters import build_level_adapters
from ...capture import DenseHeadOutputs, DistillRecord
from ...detectors import (checked_dense_view, detection_score_logits,
                          flatten_level_maps)
from ...losses.pearson_feature_loss import standardize_channels
from ..distill_method import DistillMethod
from ..pair_requirement import PairRequirement, for_both
from .teacher_head_tail import (check_tower_head, head_tail_forward,
                                per_level_towers, tower_depth, tower_names)


def align_to_teacher(student: Tensor, teacher: Tensor,
                     eps: float = 1e-6) -> Tensor:
    """Each student channel standardised over (N, H, W), then given the
    teacher channel's mean and (unbiased) standard deviation."""
    flat = teacher.detach().transpose(0, 1).reshape(teacher.shape[1], -1)
    shape = (1, -1) + (1, ) * (teacher.dim() - 2)
    mean = flat.mean(dim=1).reshape(shape)
    std = flat.std(dim=1).reshape(shape) if flat.shape[1] > 1 else \
        torch.zeros_like(mean)
    return standardize_channels(student, eps) * std + mean


@MODELS.register_module()
class CrossKD(DistillMethod):
    """CrossKD (Wang et al., CVPR 2024): the student's intermediate head
    features run through the frozen teacher head's remaining layers, and
    the resulting *cross-head* predictions mimic the teacher's own.

    Following jbwang1997/CrossKD@87e156a (``crosskd_*.py`` detectors):

    1. ``h^s_l``, ``h^t_l``: the output of tower layer ``k − 1``
       (``k = reused_teacher_head_idx``) of the classification and of the
       box tower, per level (the neck features when ``k = 0``);
    2. ``ĥ_l = relu(std(h^s_l) · σ(h^t_l) + μ(h^t_l))`` per channel over
       (N, H, W) (no ReLU when ``k = 0``, nor for RTMDet and YOLOX, whose
       layers end in SiLU);
    3. the teacher head's layers ``k...`` and predictors on ``ĥ_l`` give
       cross-head logits ``s^x`` and box outputs ``b^x``;
    4. ``loss_crosskd_cls = L_cls(s^x, s^t; w = label weights) / A`` (default
       :class:`KDQualityFocalLoss`, β = 1), ``A`` the head's average factor;
       for YOLOX (not in the source) ``s`` is the logit of the detection
       score ``σ(c) · σ(o)`` of its class and objectness outputs
       (:func:`detection_score_logits`), label weights 1, ``A`` its number
       of positives;
    5. ``loss_crosskd_reg``: with ``ω_i = σ(max_c s^t_ic)`` (0 where the
       label weight is 0), for box-regressing heads (RetinaNet, ATSS, FCOS,
       RTMDet, YOLOX) ``L_reg(decode(b^x), decode(b^t); ω) / A`` (default
       GIoU; distances of point heads clamped at 0 first; YOLOX decoded by
       its own ``_bbox_decode``); for GFL
       ``L_reg`` on each edge's distribution (default KL, T = 1, summed
       over bins, λ = 4), ``/ 4 / Σ ω``;
    6. ``loss_crosskd_centerness`` (option ``loss_centerness``, heads with
       centerness): ``L(c^x, σ(c^t))`` on the positives, ``/ A``.

    Gradients reach the student through ``ĥ``; the teacher gets none.

    Args:
        reused_teacher_head_idx: ``k``, the first teacher tower layer run on
            the student's features (the authors: 3 of 4 for RetinaNet, ATSS
            and GFL, 2 for FCOS).
        loss_cls: The classification term.
        loss_reg: The box term; ``None``: the authors' choice for the head
            (KL on distributions for GFL, GIoU otherwise).
        loss_centerness: The centerness term, or ``None`` (default).
        adapter: Adapter of the student's tower channels to the
            teacher's, one per tower (classification, box) shared by the
            levels as the head's layers are, applied before step 2;
            ``None`` (the authors, whose pairs share 256 channels)
            requires equal channels.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'crosskd'
    display_name = 'CrossKD'
    record_parts = ('neck', 'dense_head')
    requires_same_dense_layout = True
    pair_requirements = (
        PairRequirement('needs heads with towers', for_both(
            lambda det, role: check_tower_head(det.bbox_head, role,
                                               'CrossKD'))), )

    def __init__(self,
                 reused_teacher_head_idx: int = 3,
                 loss_cls: OptConfigType = dict(type='KDQualityFocalLoss',
                                                beta=1.0, loss_weight=1.0),
                 loss_reg: OptConfigType = None,
                 loss_centerness: OptConfigType = None,
                 adapter: OptConfigType = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(reused_teacher_head_idx, int) or \
                reused_teacher_head_idx < 0:
            raise ValueError('reused_teacher_head_idx must be an int >= 0, '
                             f'got {reused_teacher_head_idx!r}.')
        self.first = reused_teacher_head_idx
        self._cfgs = dict(cls=loss_cls, reg=loss_reg,
                          centerness=loss_centerness)
        self._adapter_cfg = adapter

    def setup(self) -> None:
        s_head, t_head = self.student.bbox_head, self.teacher.bbox_head
        for role, head in (('student', s_head), ('teacher', t_head)):
            if tower_depth(head) < self.first:
                raise ValueError(
                    f'reused_teacher_head_idx={self.first}, but the {role}\'s '
                    f'head has {tower_depth(head)} tower layers; choose at '
                    f'most {tower_depth(head)}.')
        if self.first > 0:
            self.student_taps = self.tower_paths(s_head)
            self.teacher_taps = self.tower_paths(t_head)
        self.distributions = checked_dense_view(
            t_head, 'teacher').predicts_distributions
        s_ch, t_ch = self._channels(s_head), self._channels(t_head)
        if self._adapter_cfg is None:
            if s_ch != t_ch:
                raise ValueError(
                    f'CrossKD feeds the student\'s head features ({s_ch} '
                    f'channels) to the teacher\'s head ({t_ch}); set '
                    "adapter=dict(type='ConvAdapter') or give both heads "
                    'the same feat_channels.')
            self.adapters = None
        else:
            # one adapter per tower (classification, box)
            self.adapters = build_level_adapters(self._adapter_cfg,
                                                 [s_ch, s_ch], [t_ch, t_ch])
        reg = self._cfgs['reg']
        if reg is None:
            reg = dict(type='DistributionKLLoss', temperature=1.0,
                       bin_reduction='sum', loss_weight=4.0) \
                if self.distributions else dict(type='GIoULoss',
                                                loss_weight=1.0)
        self.loss_cls = MODELS.build(self._cfgs['cls'])
        self.loss_reg = MODELS.build(reg)
        ctr = self._cfgs['centerness']
        if ctr is not None and not hasattr(t_head, 'centerness_target') \
                and not hasattr(t_head, 'atss_centerness'):
            raise ValueError(
                f'loss_centerness is set, but the {type(t_head).__name__} '
                'predicts no centerness; remove it.')
        self.loss_centerness = None if ctr is None else MODELS.build(ctr)

    def tower_paths(self, head) -> tuple:
        """Paths of tower layer ``k − 1``: one per tower for a tower shared
        by the levels (called once per level), or one per level and tower
        for heads with a tower per level (classification levels first)."""
        k = self.first - 1
        names = tower_names(head)
        if not per_level_towers(head):
            return tuple(f'bbox_head.{tower}.{k}' for tower in names)
        levels = range(len(getattr(head, names[0])))
        return tuple(f'bbox_head.{tower}.{level}.{k}'
                     for tower in names for level in levels)

    def _channels(self, head) -> int:
        return head.in_channels if self.first == 0 else head.feat_channels

    # ------------------------------------------------------------------ step
    def _holds(self, record: DistillRecord, role: str) -> List[List[Tensor]]:
        """``[cls per level, reg per level]`` of one detector."""
        if self.first == 0:
            neck = list(getattr(record, f'{role}_neck'))
            return [neck, neck]
        taps = getattr(record, f'{role}_taps')
        paths = getattr(self, f'{role}_taps')
        head = getattr(self, role).bbox_head
        if not per_level_towers(head):  # one layer, called once per level
            return [taps[path] for path in paths]
        half = len(paths) // 2  # each level's own layer, called once
        return [[taps[p][0] for p in paths[:half]],
                [taps[p][0] for p in paths[half:]]]

    def cross_head_outputs(self, record: DistillRecord) -> tuple:
        """The teacher head's outputs on the aligned student features."""
        student, teacher = self._holds(record, 'student'), \
            self._holds(record, 'teacher')
        aligned = []
        for branch, (s_levels, t_levels) in enumerate(zip(student, teacher)):
            if self.adapters is not None:
                s_levels = [self.adapters[branch](s.float())
                            for s in s_levels]
            aligned.append([align_to_teacher(s.float(), t.float())
                            for s, t in zip(s_levels, t_levels)])
        return head_tail_forward(self.teacher.bbox_head, self.first,
                                 aligned[0], aligned[1])

    def own_passes(self, record: DistillRecord) -> List[Tensor]:
        """The teacher head's tail on the student's features (adapters
        included), forward and backward, by design."""
        return [t for outputs in self.cross_head_outputs(record)
                for t in outputs]

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        head = self.teacher.bbox_head
        cross = self.cross_head_outputs(record)
        targets = record.dense_targets
        num_classes = head.cls_out_channels
        avg = max(float(targets.avg_factor), 1.0)
        cross_dense = DenseHeadOutputs(cross[0], cross[1], tuple(cross[2:]))
        t_cls = flatten_level_maps(
            detection_score_logits(head, record.teacher_dense),
            num_classes).reshape(-1, num_classes)
        x_cls = flatten_level_maps(
            detection_score_logits(head, cross_dense),
            num_classes).reshape(-1, num_classes)
        label_weights = torch.cat(targets.label_weights, dim=1).reshape(-1)
        losses = dict(cls=self.loss_cls(x_cls, t_cls, label_weights,
                                        avg_factor=avg))
        reg_weight = t_cls.max(dim=1).values.sigmoid() * \
            (label_weights > 0).float()
        losses['reg'] = self._reg_loss(record, cross[1], reg_weight, avg)
        if self.loss_centerness is not None:
            labels = torch.cat(targets.labels, dim=1).reshape(-1)
            pos = (labels >= 0) & (labels < head.num_classes)
            t_ctr = flatten_level_maps(record.teacher_dense.extras[0],
                                       1).reshape(-1)
            x_ctr = flatten_level_maps(cross[2], 1).reshape(-1)
            losses['centerness'] = self.loss_centerness(
                x_ctr[pos], t_ctr[pos].sigmoid(), avg_factor=avg)
        return losses

    def _reg_loss(self, record: DistillRecord, cross_boxes: Sequence[Tensor],
                  weight: Tensor, avg: float) -> Tensor:
        head = self.teacher.bbox_head
        teacher_boxes = record.teacher_dense.bbox_preds
        if self.distributions:
            bins = head.reg_max + 1
            x = flatten_level_maps(cross_boxes, 4 * bins).reshape(-1, bins)
            t = flatten_level_maps(teacher_boxes, 4 * bins).reshape(-1, bins)
            edge_weight = weight[:, None].expand(-1, 4).reshape(-1)
            loss = self.loss_reg(x.float(), t.float(), weight=edge_weight,
                                 avg_factor=4.0)
            return loss / weight.sum().clamp(min=1e-6)
        # decoded by the teacher head's view, its codes bounded to proper
        # boxes first (distances >= 0: RTMDet's unbounded regression would
        # make inverted boxes, whose GIoU is meaningless; YOLOX's log sizes
        # bounded so that no prior overflows to an infinite box)
        view = checked_dense_view(head, 'teacher')
        priors, strides, _ = view.priors_and_strides(
            [m.shape[-2:] for m in teacher_boxes], teacher_boxes[0].device)
        size = view.box_code_size
        x, t = (view.decode(priors, flatten_level_maps(
            [b.float() for b in boxes], size), strides,
            bounded=True).reshape(-1, 4)
            for boxes in (cross_boxes, teacher_boxes))
        return self.loss_reg(x, t, weight=weight, avg_factor=avg)
