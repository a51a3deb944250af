"""What a dense head outputs and what its assigner builds, one tensor per
level."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from torch import Tensor


@dataclass
class DenseHeadOutputs:
    """Raw outputs of a dense head, one tensor per level.

    Attributes:
        cls_scores: (B, A*C, H, W) class logits.
        bbox_preds: (B, A*box_dim, H, W) box regressions, in the head's own
            encoding (deltas for anchor heads, distances for FCOS).
        extras: Further outputs in head order, e.g. FCOS/ATSS centerness.
    """
    cls_scores: List[Tensor]
    bbox_preds: List[Tensor]
    extras: Tuple[List[Tensor], ...] = ()


@dataclass
class DenseTargets:
    """Targets the student head's assigner produced, one tensor per level.

    Positions are ordered as the head flattens its outputs: level, then
    (H, W, anchor). Background label is ``num_classes``.

    Attributes:
        labels: (B, N_l) long.
        label_weights: (B, N_l) float; 0 where the assigner ignores a
            position (e.g. RetinaNet's 0.4-0.5 IoU band).
        bbox_targets: (B, N_l, box_dim) in the head's box encoding; heads
            that regress decoded boxes (GFL, ATSS with ``reg_decoded_bbox``,
            RTMDet) give the ground-truth boxes (x1, y1, x2, y2) in input
            pixels.
        bbox_weights: (B, N_l, box_dim) float.
        avg_factor: The head's normaliser (number of positives or samples;
            for RTMDet the sum of the assignment metrics).
        quality: (B, N_l) float or ``None``: the soft class target of
            heads trained with a quality focal loss on an assignment
            metric (RTMDet's IoU with the assigned box, zero off the
            positives); ``None`` for the other heads.
    """
    labels: List[Tensor]
    label_weights: List[Tensor]
    bbox_targets: List[Tensor]
    bbox_weights: List[Tensor]
    avg_factor: float
    quality: Optional[List[Tensor]] = None
