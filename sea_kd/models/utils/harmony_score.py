"""TBD's harmony score: agreement of a teacher's class score and its IoU.

For a dense head position ``i`` that the student head's assigner marks
positive (label ``c_i`` in ``[0, C)``) with assigned ground-truth box
``g_i``::

    s_i  = σ(z^t_{i, c_i})                  teacher score of the GT class
    u_i  = IoU(decode(prior_i, δ^t_i), g_i)  teacher box vs. assigned box
    HS_i = s_i^κ · u_i^(1−κ)                 high only when both are high
                                             (form='product', default)
    HS_i = 1 − |s_i − u_i|                   high when they agree
                                             (form='agreement')

The teacher's box is decoded with the teacher head's own box coder (or,
for YOLOX, which has none, with its own decoding), the ground-truth box
is recovered from the student head's regression targets with the student
head's coder. Everything is vectorised over images, positions and
classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.models.dense_heads import YOLOXHead
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from torch import Tensor, nn

from ..capture.dense_targets import regresses_boxes
from .dense_layout import flatten_level_maps


HARMONY_FORMS = ('product', 'agreement')


def harmony_score(scores: Tensor,
                  ious: Tensor,
                  kappa: float = 0.5,
                  form: str = 'product') -> Tensor:
    """The harmony score of a class score and an IoU, elementwise.

    TBD's abstract defines the harmony score as the harmony of the
    classification score and the IoU; both readings are reconstructions:

    * ``'product'``: ``HS = s^κ · u^(1−κ)``, high only when both are high;
    * ``'agreement'``: ``HS = 1 − |s − u|``, high when the two agree, also
      when both are low (κ is not used).

    Args:
        scores: Class probabilities ``s`` in ``[0, 1]`` (clamped).
        ious: IoUs ``u`` in ``[0, 1]`` (clamped), same shape.
        kappa: κ in ``[0, 1]`` of ``'product'``; 1 keeps the score alone,
            0 the IoU alone.
        form: ``'product'`` or ``'agreement'``.

    Returns:
        Tensor: The harmony scores in ``[0, 1]``, in fp32 (fp64 stays fp64).
    """
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f'kappa must lie in [0, 1], got {kappa}.')
    if form not in HARMONY_FORMS:
        raise ValueError(f'form must be one of {HARMONY_FORMS}, got '
                         f'{form!r}.')
    if scores.shape != ious.shape:
        raise ValueError(f'scores {tuple(scores.shape)} and ious '
                         f'{tuple(ious.shape)} must have the same shape.')
    dtype = torch.promote_types(scores.dtype, torch.float32)
    s = scores.to(dtype).clamp(0, 1)
    u = ious.to(dtype).clamp(0, 1)
    if form == 'agreement':
        return 1.0 - (s - u).abs()
    return s.pow(kappa) * u.pow(1.0 - kappa)


@dataclass
class DenseHarmony:
    """The teacher's harmony at every dense position, shape (B, N).

    Positions are ordered level → H → W → anchor per image, as in
    ``DenseTargets``; all values are 0 off the positives.

    Attributes:
        positive: bool, positions the student's assigner marked positive.
        labels: long, the assigned labels (``num_classes`` = background).
        teacher_scores: ``s_i``, the teacher probability of the GT class.
        ious: ``u_i``, IoU of the teacher's box with the assigned box.
        scores: ``HS_i``.
        num_per_level: ``N_l = H_l·W_l·A`` per level.
    """
    positive: Tensor
    labels: Tensor
    teacher_scores: Tensor
    ious: Tensor
    scores: Tensor
    num_per_level: List[int]

    def split(self, values: Tensor) -> List[Tensor]:
        """(B, N) -> per level (B, N_l)."""
        return list(torch.split(values, self.num_per_level, dim=1))


def _box_code_size(head: nn.Module) -> int:
    return int(getattr(getattr(head, 'bbox_coder', None), 'encode_size', 4))


def _priors_and_strides(head: nn.Module,
                        featmap_sizes: Sequence[Tuple[int, int]],
                        device: torch.device) -> Tuple[Tensor, Tensor,
                                                       List[int]]:
    """All priors (N, 4 or 2) in the head's order, each position's stride
    (N,), and the number of positions per level."""
    generator = head.prior_generator
    priors = generator.grid_priors(
        list(featmap_sizes), dtype=torch.float32, device=device)
    counts = [int(p.shape[0]) for p in priors]
    strides = []
    for level, count in enumerate(counts):
        stride = generator.strides[level]
        stride = stride[0] if isinstance(stride, (tuple, list)) else stride
        strides.append(torch.full((count, ), float(stride), device=device))
    return torch.cat(priors), torch.cat(strides), counts


def _decode_rows(head: nn.Module, priors: Tensor, codes: Tensor,
                 strides: Tensor) -> Tensor:
    """(M, 4) boxes of (M, D) codes at (M, d) priors of (M,) strides: the
    head's box coder, or YOLOX's own decoding (``_bbox_decode``: centre
    offsets and log sizes in stride units; YOLOX has no box coder)."""
    if isinstance(head, YOLOXHead):
        with_stride = torch.cat(
            [priors[:, :2], strides[:, None].expand(-1, 2)], dim=1)
        return head._bbox_decode(with_stride, codes)
    return get_box_tensor(head.bbox_coder.decode(priors, codes))


def _decode(head: nn.Module, priors: Tensor, codes: Tensor,
            mask: Optional[Tensor], strides: Tensor) -> Tensor:
    """Decode (B, N, D) codes against (N, d) priors of (N,) strides:
    (B, N, 4) boxes, or the (P, 4) boxes where ``mask`` (B, N) is true."""
    batch, num = codes.shape[:2]
    priors = priors.unsqueeze(0).expand(batch, -1, -1)
    strides = strides.unsqueeze(0).expand(batch, -1)
    if mask is not None:
        priors, codes, strides = priors[mask], codes[mask], strides[mask]
        if codes.shape[0] == 0:
            return codes.new_zeros((0, 4))
        return _decode_rows(head, priors, codes, strides)
    boxes = _decode_rows(head, priors.reshape(batch * num, -1),
                         codes.reshape(batch * num, -1),
                         strides.reshape(-1))
    return boxes.reshape(batch, num, 4)


def _check_count(what: str, got: int, priors: Tensor) -> None:
    if got != priors.shape[0]:
        raise ValueError(
            f'{what} hold {got} positions per image but the head\'s prior '
            f'generator gives {priors.shape[0]}; teacher and student must '
            'share the dense layout (strides, anchors per location) and the '
            'feature map sizes.')


def _predictions_in_pixels(head: nn.Module, bbox_preds: Sequence[Tensor],
                           strides: Tensor) -> Tensor:
    """(B, N, D) box codes of a head's raw regression outputs, in pixels.

    ``FCOSHead.forward_single`` with ``norm_on_bbox=True`` multiplies its
    distances by the stride only in eval mode; in training mode they are in
    stride units and are scaled here.
    """
    codes = flatten_level_maps([p.float() for p in bbox_preds],
                               _box_code_size(head))
    if getattr(head, 'norm_on_bbox', False) and head.training:
        codes = codes * strides[None, :, None]
    return codes


def _targets_in_pixels(head: nn.Module, bbox_targets: Sequence[Tensor],
                       strides: Tensor) -> Tensor:
    """(B, N, D) regression targets in pixels (FCOS divides them by the
    stride when ``norm_on_bbox=True``, in any mode)."""
    codes = torch.cat([t.float() for t in bbox_targets], dim=1)
    if getattr(head, 'norm_on_bbox', False):
        codes = codes * strides[None, :, None]
    return codes


def decode_dense_predictions(head: nn.Module,
                             bbox_preds: Sequence[Tensor],
                             mask: Optional[Tensor] = None) -> Tensor:
    """Boxes ``(x1, y1, x2, y2)`` from a dense head's raw regressions.

    Args:
        head: The head that produced ``bbox_preds`` (its prior generator,
            box coder, and for FCOS ``norm_on_bbox`` and training mode).
        bbox_preds: Per level (B, A*D, H, W), the head's own encoding.
        mask: Optional (B, N) bool selecting positions.

    Returns:
        Tensor: (B, N, 4) boxes in input-image pixels, or (P, 4) where
        ``mask`` is true. Boxes are not clipped to the image.
    """
    sizes = [tuple(p.shape[-2:]) for p in bbox_preds]
    priors, strides, _ = _priors_and_strides(head, sizes,
                                             bbox_preds[0].device)
    codes = _predictions_in_pixels(head, bbox_preds, strides)
    _check_count('The box predictions', codes.shape[1], priors)
    return _decode(head, priors, codes, mask, strides)


def decode_dense_targets(head: nn.Module, bbox_targets: Sequence[Tensor],
                         featmap_sizes: Sequence[Tuple[int, int]],
                         mask: Optional[Tensor] = None) -> Tensor:
    """The assigned ground-truth boxes from a head's regression targets.

    Anchor heads with ``reg_decoded_bbox=True`` (ATSS) and RTMDet heads
    hold the boxes already; otherwise the targets are decoded with the head's box coder
    (deltas against anchors, or FCOS distances to points, scaled back by the
    stride when ``norm_on_bbox=True``). Only positives carry meaningful
    boxes.

    Args:
        head: The head whose assigner built the targets.
        bbox_targets: Per level (B, N_l, D), ``DenseTargets.bbox_targets``.
        featmap_sizes: (H_l, W_l) per level.
        mask: Optional (B, N) bool selecting positions.

    Returns:
        Tensor: (B, N, 4) boxes, or (P, 4) where ``mask`` is true.
    """
    priors, strides, _ = _priors_and_strides(head, featmap_sizes,
                                             bbox_targets[0].device)
    return _targets_to_boxes(head, priors, strides, bbox_targets, mask)


def _targets_to_boxes(head: nn.Module, priors: Tensor, strides: Tensor,
                      bbox_targets: Sequence[Tensor],
                      mask: Optional[Tensor]) -> Tensor:
    codes = _targets_in_pixels(head, bbox_targets, strides)
    _check_count('The regression targets', codes.shape[1], priors)
    if regresses_boxes(head):
        return codes[mask] if mask is not None else codes
    return _decode(head, priors, codes, mask, strides)


@torch.no_grad()
def dense_harmony_scores(student_head: nn.Module,
                         teacher_head: nn.Module,
                         teacher_cls_scores: Sequence[Tensor],
                         teacher_bbox_preds: Sequence[Tensor],
                         labels: Sequence[Tensor],
                         bbox_targets: Sequence[Tensor],
                         kappa: float = 0.5,
                         form: str = 'product') -> DenseHarmony:
    """The teacher's harmony score at the student's positive positions.

    ``HS_i = s_i^κ · u_i^(1−κ)`` (or ``1 − |s_i − u_i|``, see
    :func:`harmony_score`) with ``s_i = σ(z^t_{i, c_i})`` and ``u_i``
    the IoU of the teacher's decoded box with the box assigned to ``i`` (see
    the module docstring). Teacher and student heads must share the prior
    layout; the priors are the student head's.

    Args:
        student_head: The head whose assigner built ``labels`` and
            ``bbox_targets`` (its box coder decodes the targets).
        teacher_head: The head that produced the teacher's outputs (its box
            coder decodes them).
        teacher_cls_scores: Per level (B, A*C, H, W) sigmoid class logits.
        teacher_bbox_preds: Per level (B, A*D, H, W) box regressions.
        labels: Per level (B, N_l) assigned labels (background = C).
        bbox_targets: Per level (B, N_l, D) regression targets.
        kappa: κ.
        form: ``'product'`` or ``'agreement'`` (:func:`harmony_score`).

    Returns:
        DenseHarmony: (B, N) maps, zero off the positives; no gradient.
    """
    num_classes = int(student_head.num_classes)
    sizes = [tuple(s.shape[-2:]) for s in teacher_cls_scores]
    device = teacher_cls_scores[0].device
    priors, strides, counts = _priors_and_strides(student_head, sizes,
                                                  device)
    labels = torch.cat(list(labels), dim=1)
    _check_count('The labels', labels.shape[1], priors)
    positive = (labels >= 0) & (labels < num_classes)

    logits = flatten_level_maps([s.float() for s in teacher_cls_scores],
                                num_classes)
    _check_count('The teacher class scores', logits.shape[1], priors)
    pos_labels = labels[positive]
    pos_scores = logits[positive].gather(
        1, pos_labels.unsqueeze(1)).squeeze(1).sigmoid()

    codes = _predictions_in_pixels(teacher_head, teacher_bbox_preds, strides)
    _check_count('The teacher box predictions', codes.shape[1], priors)
    teacher_boxes = _decode(teacher_head, priors, codes, positive, strides)
    gt_boxes = _targets_to_boxes(student_head, priors, strides,
                                 bbox_targets, positive)
    pos_ious = bbox_overlaps(teacher_boxes, gt_boxes, is_aligned=True)
    pos_harmony = harmony_score(pos_scores, pos_ious, kappa, form)

    def scatter(values: Tensor) -> Tensor:
        full = logits.new_zeros(labels.shape)
        full[positive] = values.to(full.dtype)
        return full

    return DenseHarmony(
        positive=positive,
        labels=labels,
        teacher_scores=scatter(pos_scores),
        ious=scatter(pos_ious),
        scores=scatter(pos_harmony),
        num_per_level=counts)
