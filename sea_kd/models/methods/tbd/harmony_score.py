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

The teacher's box is decoded as the teacher head's view decodes it (its own
box coder, or, for YOLOX, which has none, its own decoding), the
ground-truth box is recovered from the student head's regression targets by
the student head's view. Everything is vectorised over images, positions and
classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor, nn

from ....utils.checked_choice import checked_choice
from ...detectors import DenseHeadView, checked_dense_view, flatten_level_maps

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
    checked_choice('form', form, HARMONY_FORMS)
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


def _check_count(what: str, got: int, priors: Tensor) -> None:
    if got != priors.shape[0]:
        raise ValueError(
            f'{what} hold {got} positions per image but the head\'s prior '
            f'generator gives {priors.shape[0]}; teacher and student must '
            'share the dense layout (strides, anchors per location) and the '
            'feature map sizes.')


def _targets_to_boxes(view: DenseHeadView, priors: Tensor, strides: Tensor,
                      bbox_targets: Sequence[Tensor],
                      mask: Optional[Tensor]) -> Tensor:
    codes = view.targets_in_pixels(bbox_targets, strides)
    _check_count('The regression targets', codes.shape[1], priors)
    if view.regresses_boxes:
        return codes[mask] if mask is not None else codes
    return view.decode(priors, codes, strides, mask)


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
    the module docstring). Teacher and student heads must predict for the
    same positions (one family, or families with one prior per location at
    the same strides); each head's boxes are decoded from its own priors.

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
    s_view = checked_dense_view(student_head, 'student')
    t_view = checked_dense_view(teacher_head, 'teacher')
    priors, strides, counts = s_view.priors_and_strides(sizes, device)
    labels = torch.cat(list(labels), dim=1)
    _check_count('The labels', labels.shape[1], priors)
    positive = (labels >= 0) & (labels < num_classes)

    logits = flatten_level_maps([s.float() for s in teacher_cls_scores],
                                num_classes)
    _check_count('The teacher class scores', logits.shape[1], priors)
    pos_labels = labels[positive]
    pos_scores = logits[positive].gather(
        1, pos_labels.unsqueeze(1)).squeeze(1).sigmoid()

    codes = t_view.predictions_in_pixels(teacher_bbox_preds)
    _check_count('The teacher box predictions', codes.shape[1], priors)
    # the teacher's own priors: a head of another family (an FCOS point
    # where the student has an ATSS anchor) decodes from its own
    t_priors, t_strides, _ = t_view.priors_and_strides(sizes, device)
    teacher_boxes = t_view.decode(t_priors, codes, t_strides, positive)
    gt_boxes = _targets_to_boxes(s_view, priors, strides, bbox_targets,
                                 positive)
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
