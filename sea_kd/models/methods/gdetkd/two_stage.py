"""G-DetKD between two-stage detectors (the homogeneous pipeline)."""
from __future__ import annotations

from typing import Dict

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor

from ...capture import DistillRecord
from ...detectors import rcnn_stage
from ...detectors.pair_checks import check_same_box_coding
from ...utils.head_transfer import copy_matching_state
from .gdetkd import HOMOGENEOUS, GDetKD, gdetkd_pipeline, log, rows
from .region_budget import regions_within_budget
from .region_sampling import positive_regions


@MODELS.register_module()
@gdetkd_pipeline(HOMOGENEOUS)
class GDetKDTwoStage(GDetKD):
    """G-DetKD with a two-stage student (e.g. Faster R-CNN → Faster R-CNN).

    The regions are the student's sampled R-CNN RoIs of the step; the
    teacher's R-CNN branch runs on them. Besides ``sgfi`` and ``ckd``
    (:class:`GDetKD`; the student's representation is its own last shared
    FC output), the R-CNN class logits (:class:`RCNNLogitKDLoss`, ``cls``)
    and class-specific box deltas (:class:`ClassAwareRegKDLoss`, ``reg``)
    are distilled, and the student's R-CNN bbox head may start from the
    teacher's (``head_transfer``).

    Args:
        loss_cls: :class:`RCNNLogitKDLoss` config or ``None``.
        loss_reg: :class:`ClassAwareRegKDLoss` config or ``None``.
        head_transfer: At ``init_weights``, after the student's own
            initialisation and before ``student_ckpt``, copy the teacher's
            R-CNN bbox head parameters whose names and shapes match into the
            student's (listed in :attr:`transferred_head_params`).
        **kwargs: See :class:`GDetKD`. ``max_regions_per_img`` caps the
            feature terms only; ``cls`` and ``reg`` keep every RoI.
    """

    record_parts = ('neck', 'roi')
    #: The dense student's region feature: not used here.
    dense_region_repr = None
    own_options = ('loss_cls', 'loss_reg', 'head_transfer')

    def __init__(self,
                 loss_cls: OptConfigType = dict(
                     type='RCNNLogitKDLoss', temperature=1.0,
                     loss_weight=1.0),
                 loss_reg: OptConfigType = dict(
                     type='ClassAwareRegKDLoss', loss_weight=1.0),
                 head_transfer: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._loss_cls_cfg, self._loss_reg_cfg = loss_cls, loss_reg
        self.head_transfer = bool(head_transfer)
        #: Names (in the student's R-CNN bbox head) that head transfer
        #: copied from the teacher at the last ``init_weights``.

    def setup(self) -> None:
        super().setup()
        self.check_has_terms(self._loss_sgfi_cfg, self._loss_ckd_cfg,
                             self._loss_cls_cfg, self._loss_reg_cfg)
        extractor = rcnn_stage(self.student).extractor
        self.student_strides = [float(s) for s in extractor.featmap_strides]
        self.loss_sgfi = self.build_sgfi(self.student_strides,
                                         int(extractor.out_channels))
        self.loss_ckd = None
        if self._loss_ckd_cfg is not None:
            teacher_dim = self.representation_size(self.teacher, 'teacher')
            student_dim = self.representation_size(self.student, 'student')
            self.loss_ckd = MODELS.build(dict(
                self._loss_ckd_cfg, student_channels=student_dim,
                teacher_channels=teacher_dim))
        self.loss_cls = MODELS.build(self._loss_cls_cfg) \
            if self._loss_cls_cfg is not None else None
        self.loss_reg = None
        if self._loss_reg_cfg is not None:
            check_same_box_coding(rcnn_stage(self.student).bbox_head,
                                  rcnn_stage(self.teacher).bbox_head)
            self.loss_reg = MODELS.build(self._loss_reg_cfg)

    def init_student(self) -> None:
        """Head transfer: the teacher's R-CNN bbox head, where it fits."""
        self.transferred_head_params = []
        if not self.head_transfer:
            return
        copied, skipped = copy_matching_state(
            rcnn_stage(self.teacher).bbox_head,
            rcnn_stage(self.student).bbox_head)
        self.transferred_head_params = copied
        log(f'G-DetKD head transfer: copied {len(copied)} entries of '
            f'the teacher\'s R-CNN bbox head into the student\'s '
            f'({", ".join(copied) or "none"}); kept '
            f'{len(skipped)} ({", ".join(skipped) or "none"}).')

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        roi = record.roi
        rois, teacher_feats = roi.rois, roi.teacher_feats
        student_repr, teacher_repr = roi.student_repr, roi.teacher_repr
        positive = positive_regions(roi.sampling_results)
        if self.max_regions_per_img is not None:
            keep = regions_within_budget(rois[:, 0], positive,
                                         self.max_regions_per_img)
            rois, teacher_feats = rois[keep], teacher_feats[keep]
            positive = positive[keep]
            student_repr = rows(student_repr, keep)
            teacher_repr = rows(teacher_repr, keep)
        levels = list(record.student_neck[:len(self.student_strides)])
        losses = self.region_terms(levels, rois, positive, teacher_feats,
                                   teacher_repr, lambda _: student_repr)
        if self.loss_cls is not None:
            losses['cls'] = self.loss_cls(roi.student_cls, roi.teacher_cls)
        if self.loss_reg is not None:
            losses['reg'] = self.loss_reg(roi.student_reg, roi.teacher_reg,
                                          roi.teacher_cls)
        return losses
