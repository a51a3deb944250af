"""TBD: task-balanced distillation (harmonious + task-decoupled feature)."""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor

from ....utils.checked_choice import checked_choice
from ...adapters import build_level_adapters
from ...capture import DistillRecord
from ...detectors import detection_score_logits, flatten_level_logits
from ...detectors.pair_checks import check_same_levels, neck_channels_of
from ...utils.precision import levels_at_least_fp32
from ..distill_method import DistillMethod
from ..pair_requirement import sigmoid_heads
from .harmony_score import HARMONY_FORMS, DenseHarmony, dense_harmony_scores


@MODELS.register_module()
class TBD(DistillMethod):
    """Task-balanced distillation (Tang et al., arXiv 2208.03006).

    ``loss_tbd_hd + loss_tbd_tfd``:

    - the teacher's **harmony score** at every position the student head's
      assigner marks positive, ``HS_i = s_i^κ · u_i^(1−κ)`` with ``s_i`` the
      teacher's probability of the assigned class and ``u_i`` the IoU of the
      teacher's decoded box with the assigned box
      (:func:`~sea_kd.models.methods.tbd.harmony_score.dense_harmony_scores`);
    - ``hd``: :class:`HDLoss` on the dense class logits: by default the
      teacher's probabilities as targets, the positives weighted by their
      harmony score (the other reading, ``positive_target='harmony',
      harmony_weight=False``: the harmony score as the target of the GT
      class at positives);
    - ``tfd``: :class:`TFDLoss` on the (adapted) neck features, weighted by
      the teacher's classification and regression masks, balanced by the
      sizes of the student's own classification and regression losses.

    A term whose config is ``None`` is skipped (``loss_tfd=None``: HD alone;
    ``loss_hd=None``: TFD alone). Teacher and student must share the dense
    prior layout and the number of classes, and use sigmoid classifiers:
    RetinaNet (the paper), FCOS, ATSS, RTMDet and YOLOX. The class logits
    read are the heads' detection scores (:func:`detection_score_logits`:
    YOLOX's combine its class and objectness branches).

    Args:
        loss_hd: Config of :class:`HDLoss`, or ``None``.
        loss_tfd: Config of :class:`TFDLoss`, or ``None``.
        kappa: κ of the harmony score (0.5).
        harmony_form: ``'product'`` (``s^κ·u^(1−κ)``, default) or
            ``'agreement'`` (``1 − |s − u|``); both are readings of the
            abstract (:func:`~sea_kd.models.methods.tbd.harmony_score`).
        adapter: Per-level adapter of the student's neck features for TFD
            (default a 1x1 :class:`ConvAdapter`); ``None`` requires equal
            channels.
        cls_loss_keys: Student losses summed into ``L_cls`` for the dynamic
            task weights.
        reg_loss_keys: Student losses summed into ``L_reg``.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'tbd'
    display_name = 'TBD'
    record_parts = ('neck', 'dense_head')
    requires_same_dense_layout = True
    pair_requirements = (sigmoid_heads('TBD'), )

    def __init__(self,
                 loss_hd: OptConfigType = dict(type='HDLoss'),
                 loss_tfd: OptConfigType = dict(type='TFDLoss'),
                 kappa: float = 0.5,
                 harmony_form: str = 'product',
                 adapter: OptConfigType = dict(type='ConvAdapter'),
                 cls_loss_keys: Sequence[str] = ('loss_cls', ),
                 reg_loss_keys: Sequence[str] = ('loss_bbox', ),
                 **kwargs) -> None:
        if loss_hd is None and loss_tfd is None:
            raise ValueError(
                'TBD needs at least one of loss_hd and loss_tfd; '
                'both are None, which would distil nothing.')
        if not 0.0 <= kappa <= 1.0:
            raise ValueError(f'kappa must lie in [0, 1], got {kappa}.')
        checked_choice('harmony_form', harmony_form, HARMONY_FORMS)
        super().__init__(**kwargs)
        self.kappa = kappa
        self.harmony_form = harmony_form
        self.cls_loss_keys = tuple(cls_loss_keys)
        self.reg_loss_keys = tuple(reg_loss_keys)
        self._loss_hd_cfg, self._loss_tfd_cfg = loss_hd, loss_tfd
        self._adapter_cfg = adapter

    def setup(self) -> None:
        loss_hd, loss_tfd = self._loss_hd_cfg, self._loss_tfd_cfg
        adapter = self._adapter_cfg
        self.num_classes = self.student.bbox_head.num_classes
        self.loss_hd = MODELS.build(loss_hd) if loss_hd is not None else None
        self.loss_tfd = None
        self.adapters = None
        if loss_tfd is not None:
            self.loss_tfd = MODELS.build(loss_tfd)
            check_same_levels(self.student, self.teacher)
            s_ch = neck_channels_of(self.student)
            t_ch = neck_channels_of(self.teacher)
            if adapter is not None:
                self.adapters = build_level_adapters(adapter, s_ch, t_ch)
            elif s_ch != t_ch:
                raise ValueError(
                    f'Student neck channels {s_ch} differ from the '
                    f"teacher's {t_ch} and no adapter is configured; set "
                    "`adapter=dict(type='ConvAdapter')` or give both necks "
                    'the same `out_channels`.')

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        student_dense = record.student_dense
        teacher_dense = record.teacher_dense
        targets = record.dense_targets
        # the heads' detection scores (YOLOX: with its objectness)
        s_logits = detection_score_logits(self.student.bbox_head,
                                          student_dense)
        t_logits = detection_score_logits(self.teacher.bbox_head,
                                          teacher_dense)
        harmony = dense_harmony_scores(
            self.student.bbox_head, self.teacher.bbox_head,
            t_logits, teacher_dense.bbox_preds,
            targets.labels, targets.bbox_targets, kappa=self.kappa,
            form=self.harmony_form)
        losses = {}
        if self.loss_hd is not None:
            weights = torch.cat(targets.label_weights, dim=1).reshape(-1)
            losses['hd'] = self.loss_hd(
                flatten_level_logits(s_logits, self.num_classes),
                flatten_level_logits(t_logits, self.num_classes),
                harmony.labels.reshape(-1),
                harmony=harmony.scores.reshape(-1),
                weights=weights)
        if self.loss_tfd is not None:
            losses['tfd'] = self._tfd(record, harmony, t_logits)
        return losses

    def _tfd(self, record: DistillRecord, harmony: DenseHarmony,
             cls_scores: List[Tensor]) -> Tensor:
        # fp32 also for the adapters: autocast is off here (AMP)
        student = levels_at_least_fp32(record.student_neck)
        teacher = list(record.teacher_neck)
        if self.adapters is not None:
            student = [adapt(f) for adapt, f in zip(self.adapters, student)]
        if len(cls_scores) != len(teacher):
            raise ValueError(
                f'TFD pairs neck levels with dense-head levels, but the '
                f'neck gives {len(teacher)} levels and the head '
                f'{len(cls_scores)}.')
        sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        reg_values = harmony.scores if self.loss_tfd.reg_mask == 'harmony' \
            else harmony.ious
        cls_masks = self.loss_tfd.classification_masks(cls_scores)
        reg_masks = self.loss_tfd.regression_masks(
            harmony.split(reg_values), sizes)
        task_losses = None
        if self.loss_tfd.task_weights == 'dynamic':
            task_losses = (self._student_loss(record, self.cls_loss_keys),
                           self._student_loss(record, self.reg_loss_keys))
        return self.loss_tfd(student, teacher, cls_masks, reg_masks,
                             task_losses=task_losses)

    @staticmethod
    def _student_loss(record: DistillRecord, keys: Sequence[str]) -> Tensor:
        losses = record.student_losses
        if losses is None:
            raise ValueError('The record carries no student losses; TFD with '
                             "task_weights='dynamic' needs them.")
        missing = [k for k in keys if k not in losses]
        if missing:
            raise ValueError(
                f'Student losses {missing} not found for the dynamic task '
                f'weights; the student returned {sorted(losses)}. Set '
                'cls_loss_keys / reg_loss_keys of TBD to its loss '
                "names, or use TFDLoss(task_weights='fixed').")
        return sum(losses[k] for k in keys)
