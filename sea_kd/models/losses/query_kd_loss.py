"""Distillation of matched DETR query pairs: the terms of DETRDistill's
Hungarian-matching logits distillation (Chang et al., ICCV 2023).

See ``docs/methods/hmld.md``.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from torch import Tensor, nn

from ..utils.precision import at_least_fp32


def soft_class_targets(teacher_cls: Tensor, use_sigmoid: bool) -> Tensor:
    """The teacher's class probabilities: one sigmoid per class, or the
    softmax over the classes and "no object"."""
    teacher_cls = at_least_fp32(teacher_cls)
    return teacher_cls.sigmoid() if use_sigmoid else \
        teacher_cls.softmax(dim=-1)


def soft_cross_entropy(student_cls: Tensor, targets: Tensor,
                       use_sigmoid: bool) -> Tensor:
    """Per-row cross-entropy of student logits against soft targets,
    summed over the classes: (N,)."""
    if use_sigmoid:
        return F.binary_cross_entropy_with_logits(
            student_cls, targets, reduction='none').sum(dim=-1)
    return F.cross_entropy(student_cls, targets, reduction='none')


@MODELS.register_module()
class QueryKDLoss(nn.Module):
    r"""Class and box distillation of matched (student, teacher) queries.

    Pairs come in groups ``g`` (a student decoder layer and the teacher
    layer it learns from). With ``P_g`` the pairs ``(i, j)`` of group ``g``,
    ``s_i`` the student's logits, ``p_j`` the teacher's probabilities
    (sigmoid per class, or softmax over the classes and "no object"),
    ``b`` normalised (cx, cy, w, h) boxes and ``B`` the same boxes in
    pixels (x1, y1, x2, y2)::

        L_cls  = w_cls  Σ_g 1/max(|P_g|, 1) Σ_{(i,j)∈P_g} CE(s_i, p_j)
        L_l1   = w_l1   Σ_g 1/max(|P_g|, 1) Σ_{(i,j)∈P_g} ‖b_i − b_j‖₁
        L_giou = w_giou Σ_g 1/max(|P_g|, 1) Σ_{(i,j)∈P_g} (1 − GIoU(B_i, B_j))

    with ``CE(s, p) = Σ_c −p_c log σ(s_c) − (1 − p_c) log(1 − σ(s_c))`` for
    sigmoid classifiers and ``−Σ_c p_c log softmax(s)_c`` for softmax ones.
    Computed in float32 (float64 inputs stay float64).

    Args:
        use_sigmoid: Whether the heads classify with sigmoids.
        loss_weight_cls: ``w_cls`` (authors: 1).
        loss_weight_l1: ``w_l1`` (authors: 5).
        loss_weight_giou: ``w_giou`` (authors: 2).
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 loss_weight_cls: float = 1.0,
                 loss_weight_l1: float = 5.0,
                 loss_weight_giou: float = 2.0) -> None:
        super().__init__()
        self.use_sigmoid = use_sigmoid
        self.loss_weight_cls = loss_weight_cls
        self.loss_weight_l1 = loss_weight_l1
        self.loss_weight_giou = loss_weight_giou

    def forward(self, student_cls: Tensor, teacher_cls: Tensor,
                student_boxes: Tensor, teacher_boxes: Tensor,
                scale: Tensor, groups: Tensor,
                num_groups: int) -> Dict[str, Tensor]:
        """The three terms of the pairs.

        Args:
            student_cls / teacher_cls: (N, C') logits of the paired queries.
            student_boxes / teacher_boxes: (N, 4) normalised (cx, cy, w, h).
            scale: (N, 4) ``[w, h, w, h]`` of each pair's image, for the
                pixel boxes of the GIoU term.
            groups: (N,) long, each pair's group in ``[0, num_groups)``.
            num_groups: Number of groups (decoder layer pairs).

        Returns:
            dict: ``cls``, ``l1`` and ``giou``, scalars; zero with the
            student's graph when there are no pairs.
        """
        # float32, or float64 when either side is
        dtype = torch.promote_types(
            at_least_fp32(student_cls).dtype,
            at_least_fp32(teacher_cls).dtype)
        student_cls, student_boxes = student_cls.to(dtype), \
            student_boxes.to(dtype)
        targets = soft_class_targets(teacher_cls.detach().to(dtype),
                                     self.use_sigmoid)
        teacher_boxes = teacher_boxes.detach().to(dtype)
        counts = torch.bincount(groups, minlength=num_groups).clamp(min=1)
        row_weight = 1.0 / counts.to(student_cls.dtype)[groups]
        cls = soft_cross_entropy(student_cls, targets, self.use_sigmoid)
        l1 = (student_boxes - teacher_boxes).abs().sum(dim=-1)
        scale = scale.to(student_boxes.dtype)
        giou = bbox_overlaps(bbox_cxcywh_to_xyxy(student_boxes) * scale,
                             bbox_cxcywh_to_xyxy(teacher_boxes) * scale,
                             mode='giou', is_aligned=True)
        return dict(
            cls=self.loss_weight_cls * (row_weight * cls).sum(),
            l1=self.loss_weight_l1 * (row_weight * l1).sum(),
            giou=self.loss_weight_giou * (row_weight * (1 - giou)).sum())
