"""ADL: adaptive distillation of dense sigmoid class logits (and SAD)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType
from mmengine.structures import InstanceData
from torch import Tensor

from ..capture import DenseHeadOutputs, DistillRecord
from ..detectors import (checked_dense_view, detection_score_logits,
                         flatten_level_logits)
from ..utils.precision import levels_at_least_fp32
from .distill_method import DistillMethod
from .pair_requirement import sigmoid_heads


@MODELS.register_module()
class ADL(DistillMethod):
    """Adaptive distillation loss (Tang et al., BMVC 2019) on a dense head.

    ``loss_adl_cls`` is :class:`ADLoss` over every anchor (location) and
    class of all levels and images, with the anchors the student head's
    assigner ignores (``label_weights == 0``, RetinaNet's 0.4-0.5 IoU band)
    left out and background anchors kept.

    Teacher and student must share the dense prior layout (strides, anchors
    per location, scales, ratios) and the number of classes, and both heads
    must use sigmoid classifiers: RetinaNet (the paper), FCOS and ATSS.

    SAD (semi-supervised adaptive distillation): images flagged
    ``metainfo['unlabeled']`` (see the ``MarkUnlabeled`` transform) get the
    teacher's detections scoring at least ``pseudo_label.score_thr`` as their
    ground truth for the student's own losses, taken from the teacher forward
    the step runs anyway (online pseudo labels); ADL applies to them as to
    labeled images. Offline pseudo labels (``tools/pseudo_label.py``) need no
    option: they arrive as ordinary annotations.

    Args:
        loss_adl: Config of the loss (default :class:`ADLoss` with the
            authors' γ=2, β=1, θ=1.8, T=1 and normaliser over all anchors,
            and the paper's ``base='kl'``; the COCO configs set the authors'
            ``base='bce'``).
        pseudo_label: ``dict(score_thr=0.5)`` to enable online pseudo labels
            for unlabeled images; ``None`` refuses unlabeled images.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'adl'
    display_name = 'ADL'
    pair_requirements = (sigmoid_heads('ADL'), )
    record_parts = ('dense_head', )
    requires_same_dense_layout = True

    def __init__(self,
                 loss_adl: ConfigType = dict(type='ADLoss'),
                 pseudo_label: OptConfigType = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if pseudo_label is not None and set(pseudo_label) - {'score_thr'}:
            raise ValueError('pseudo_label takes only `score_thr`, got '
                             f'{sorted(pseudo_label)}.')
        self.pseudo_label = pseudo_label
        self._loss_adl_cfg = loss_adl

    @property
    def makes_pseudo_labels(self) -> bool:
        return self.pseudo_label is not None

    def setup(self) -> None:
        self.num_classes = self.student.bbox_head.num_classes
        self.loss_adl = MODELS.build(self._loss_adl_cfg)

    def prepare_student_samples(
            self, batch_data_samples: SampleList,
            teacher_dense: Optional[DenseHeadOutputs]) -> SampleList:
        """Give unlabeled images the teacher's confident detections."""
        unlabeled = [i for i, s in enumerate(batch_data_samples)
                     if s.metainfo.get('unlabeled', False)]
        if not unlabeled or self.pseudo_label is None:
            return batch_data_samples
        # fp32 with autocast off under AMP (mmcv's CPU NMS has no
        # half-precision kernel)
        with torch.no_grad(), torch.autocast(
                teacher_dense.cls_scores[0].device.type, enabled=False):
            fp32 = DenseHeadOutputs(
                levels_at_least_fp32(teacher_dense.cls_scores),
                levels_at_least_fp32(teacher_dense.bbox_preds),
                tuple(levels_at_least_fp32(e) for e in teacher_dense.extras))
            predictions = checked_dense_view(
                self.teacher.bbox_head, 'teacher').predict(
                fp32, [s.metainfo for s in batch_data_samples])
        threshold = self.pseudo_label.get('score_thr', 0.5)
        for i in unlabeled:
            pred = predictions[i]
            keep = pred.scores >= threshold
            batch_data_samples[i].gt_instances = InstanceData(
                bboxes=pred.bboxes[keep], labels=pred.labels[keep])
        return batch_data_samples

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        # each head's detection score (YOLOX: with its objectness), so
        # that heads of different families distil what they score by
        student = flatten_level_logits(
            detection_score_logits(self.student.bbox_head,
                                   record.student_dense), self.num_classes)
        teacher = flatten_level_logits(
            detection_score_logits(self.teacher.bbox_head,
                                   record.teacher_dense), self.num_classes)
        weights = torch.cat(record.dense_targets.label_weights, dim=1)
        return dict(cls=self.loss_adl(student, teacher,
                                      weights.reshape(-1) > 0))
