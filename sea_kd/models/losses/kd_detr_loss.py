"""Distillation of decoder outputs on shared distillation points: the
terms of KD-DETR (Wang et al., CVPR 2024).

See ``docs/methods/kd_detr.md``.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from torch import Tensor, nn

from ..utils.precision import at_least_fp32


@MODELS.register_module()
class KDDETRLoss(nn.Module):
    r"""Class and box distillation of decoder outputs on points that the
    teacher and the student both decoded.

    With ``z^l_i`` the student's class logits of point ``i`` in decoder
    layer ``l``, ``t_i`` the teacher's (its last layer), ``C`` classes,
    temperature ``T``, ``b`` normalised (cx, cy, w, h) boxes and the
    foreground weight ``w_i = max_c σ(t_ic)`` (no gradient)::

        L_cls  = w_cls  Σ_l Σ_i w_i · T²/C · KL(σ_T(t_i) ‖ σ_T(z^l_i))
        L_l1   = w_l1   Σ_l Σ_i w_i · ¼‖b^l_i − b^t_i‖₁ / Σ_i w_i
        L_giou = w_giou Σ_l Σ_i w_i · (1 − GIoU(b^l_i, b^t_i)) / Σ_i w_i

    with ``σ_T(x) = softmax(x / T)`` over the classes. ``i`` runs over
    every point of every image of the batch. As in the
    authors' ``KDCriterion`` (``models/DAB_DETR/kd_loss.py``), the class
    term is a weighted sum over the points, not a mean, so it grows with
    the number of points and images; the box terms are weighted means.
    GIoU is taken on the normalised boxes. Computed in float32 (float64
    inputs stay float64).

    Args:
        temperature: ``T`` (authors: 10).
        loss_weight_cls: ``w_cls`` (authors: 1).
        loss_weight_l1: ``w_l1`` (authors: 5).
        loss_weight_giou: ``w_giou`` (authors: 2).
    """

    def __init__(self,
                 temperature: float = 10.0,
                 loss_weight_cls: float = 1.0,
                 loss_weight_l1: float = 5.0,
                 loss_weight_giou: float = 2.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(
                f'temperature must be positive, got {temperature}.')
        self.temperature = float(temperature)
        self.loss_weight_cls = loss_weight_cls
        self.loss_weight_l1 = loss_weight_l1
        self.loss_weight_giou = loss_weight_giou

    def forward(self, student_cls: Tensor, student_boxes: Tensor,
                teacher_cls: Tensor,
                teacher_boxes: Tensor) -> Dict[str, Tensor]:
        """The three terms.

        Args:
            student_cls: (L, B, K, C) the student's logits, L layers.
            student_boxes: (L, B, K, 4) its normalised boxes.
            teacher_cls: (B, K, C) the teacher's logits.
            teacher_boxes: (B, K, 4) its normalised boxes.

        Returns:
            ``cls``, ``l1`` and ``giou``, each a scalar.
        """
        s_cls, s_box = at_least_fp32(student_cls), at_least_fp32(
            student_boxes)
        t_cls = at_least_fp32(teacher_cls).detach()
        t_box = at_least_fp32(teacher_boxes).detach()
        num_classes = s_cls.shape[-1]
        weight = t_cls.sigmoid().amax(dim=-1)  # (B, K)
        temp = self.temperature
        # KL(p_t ‖ p_s) per point and layer, the teacher broadcast over L
        kl = F.kl_div(
            F.log_softmax(s_cls / temp, dim=-1),
            F.log_softmax(t_cls / temp, dim=-1).expand_as(s_cls),
            reduction='none', log_target=True).sum(dim=-1)
        loss_cls = (kl * weight).sum() * temp**2 / num_classes
        weight_sum = weight.sum().clamp(min=torch.finfo(weight.dtype).eps)
        l1 = (s_box - t_box).abs().mean(dim=-1)
        giou = bbox_overlaps(
            bbox_cxcywh_to_xyxy(s_box),
            bbox_cxcywh_to_xyxy(t_box).expand_as(s_box),
            mode='giou', is_aligned=True)
        return dict(
            cls=self.loss_weight_cls * loss_cls,
            l1=self.loss_weight_l1 * (l1 * weight).sum() / weight_sum,
            giou=self.loss_weight_giou * ((1 - giou) * weight).sum() /
            weight_sum)
