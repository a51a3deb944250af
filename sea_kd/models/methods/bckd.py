"""BCKD: binary classification and IoU-based localisation distillation."""
from __future__ import annotations

from typing import Dict

import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, reduce_mean
from torch import Tensor

from ..capture import DistillRecord
from ..detectors import (checked_dense_view, detection_score_logits,
                         flatten_level_logits)
from .distill_method import DistillMethod
from .pair_requirement import sigmoid_heads


@MODELS.register_module()
class BCKD(DistillMethod):
    """BCKD (Yang et al., ICCV 2023, "Bridging Cross-task Protocol
    Inconsistency for Distillation in Dense Object Detection"), written
    after TinyTigerPan/BCKD@121c9aa (``NovelKDLoss`` in
    ``mmdet/models/losses/kd_loss.py``, ``LDHead.loss_single`` in
    ``mmdet/models/dense_heads/ld_head.py``).

    With ``s_ic``, ``t_ic`` the student's and teacher's detection-score
    logits at position ``i`` and class ``c`` (each head's own: GFL's joint
    quality scores, YOLOX's class × objectness), ``p = σ(s)``, ``q = σ(t)``,
    ``w_i`` the student head's label weight (0 where its assigner ignores
    the position or it lies in padding) and ``A`` the source's normaliser,
    ``Σ_images max(#positives, 1)`` averaged over the GPUs (whatever the
    head's own average factor is: RTMDet's and TOOD's sum assignment
    metrics):

    - binary classification distillation, each class its own sigmoid::

        L_cls = λ_cls / A · Σ_i w_i Σ_c BCE(p_ic, q_ic) · |p_ic − q_ic|^β

      (:class:`KDQualityFocalLoss`, β = 1; the modulating factor keeps its
      gradient, as in the source);
    - IoU-based localisation distillation on the decoded boxes::

        L_loc = λ_loc / A · Σ_i ω_i (1 − GIoU(b^s_i, b^t_i)),
        ω_i = w_i · max_c |q_ic − p_ic|   (no gradient)

      with ``b^s``, ``b^t`` each head's box at ``i`` decoded by its view
      (GFL: the expectation of each edge's distribution), the teacher's
      detached.

    Both terms cover every position the label weights keep, positive or
    not. As in the source, a level of the batch with no positive position
    contributes to neither (``positive_levels_only``).

    Teacher and student share the dense prior layout and both classify
    with sigmoids. The source distils GFL only; the other dense families
    read through their views (boxes decoded with proper distances: RTMDet's
    clamped at 0, YOLOX's log sizes bounded).

    Args:
        loss_cls: The classification term (default
            :class:`KDQualityFocalLoss`, β = 1, λ_cls = 1: the authors').
        loss_loc: The localisation term on ``(P, 4)`` boxes with weights
            and ``avg_factor`` (default mmdet's ``GIoULoss``, λ_loc = 4:
            the authors').
        positive_levels_only: Leave out the levels of the batch where the
            student's assigner found no positive (the source's
            ``if len(pos_inds) > 0`` per level); ``False`` keeps every
            level.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'bckd'
    display_name = 'BCKD'
    pair_requirements = (sigmoid_heads('BCKD'), )
    record_parts = ('dense_head', )
    requires_same_dense_layout = True

    def __init__(self,
                 loss_cls: ConfigType = dict(type='KDQualityFocalLoss',
                                             beta=1.0, loss_weight=1.0),
                 loss_loc: ConfigType = dict(type='GIoULoss',
                                             loss_weight=4.0),
                 positive_levels_only: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._cfgs = dict(cls=loss_cls, loc=loss_loc)
        self.positive_levels_only = bool(positive_levels_only)

    def setup(self) -> None:
        self.num_classes = int(self.student.bbox_head.num_classes)
        self.loss_cls = MODELS.build(self._cfgs['cls'])
        self.loss_loc = MODELS.build(self._cfgs['loc'])

    def position_weights(self, record: DistillRecord) -> Tensor:
        """(B, N) ``w_i``: the label weights, zero on the levels without a
        positive in the batch (``positive_levels_only``)."""
        targets = record.dense_targets
        weights = torch.cat(targets.label_weights, dim=1).float()
        if not self.positive_levels_only:
            return weights
        counts = torch.tensor([w.shape[1] for w in targets.label_weights],
                              device=weights.device)
        level = torch.repeat_interleave(
            torch.arange(len(counts), device=weights.device), counts)
        labels = torch.cat(targets.labels, dim=1)
        positive = ((labels >= 0) & (labels < self.num_classes)).any(dim=0)
        positives_per_level = torch.zeros(
            len(counts), device=weights.device).index_add_(
                0, level, positive.float())
        return weights * (positives_per_level > 0)[level].float()

    def normaliser(self, record: DistillRecord) -> float:
        """``A``: the positives of each image (at least 1) summed over the
        batch and averaged over the GPUs, at least 1 (the source's
        ``num_total_samples``)."""
        labels = torch.cat(record.dense_targets.labels, dim=1)
        positive = (labels >= 0) & (labels < self.num_classes)
        count = positive.sum(dim=1).clamp(min=1).sum().float()
        return max(float(reduce_mean(count)), 1.0)

    def boxes(self, role: str, record: DistillRecord, mask: Tensor) -> Tensor:
        """(P, 4) boxes of one head where ``mask`` (B, N) holds, decoded
        from its own priors by its view, in fp32."""
        head = getattr(self, role).bbox_head
        preds = getattr(record, f'{role}_dense').bbox_preds
        view = checked_dense_view(head, role)
        priors, strides, _ = view.priors_and_strides(
            [p.shape[-2:] for p in preds], preds[0].device)
        codes = view.predictions_in_pixels(preds)
        return view.decode(priors, codes, strides, mask, bounded=True)

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        student = flatten_level_logits(
            detection_score_logits(self.student.bbox_head,
                                   record.student_dense),
            self.num_classes).float()
        teacher = flatten_level_logits(
            detection_score_logits(self.teacher.bbox_head,
                                   record.teacher_dense),
            self.num_classes).float().detach()
        weights = self.position_weights(record)
        avg = self.normaliser(record)
        losses = dict(cls=self.loss_cls(student, teacher, weights.reshape(-1),
                                        avg_factor=avg))
        with torch.no_grad():
            gap = (teacher.sigmoid() - student.sigmoid()).abs().amax(dim=1)
            omega = weights.reshape(-1) * gap
        mask = (omega > 0).reshape(weights.shape)
        if not bool(mask.any()):  # nothing to distil: a zero in the graph
            losses['loc'] = student.sum() * 0.0
            return losses
        s_boxes = self.boxes('student', record, mask)
        t_boxes = self.boxes('teacher', record, mask).detach()
        losses['loc'] = self.loss_loc(s_boxes, t_boxes, weight=omega[
            mask.reshape(-1)], avg_factor=avg)
        return losses
