"""The view of R-CNNs: the stage whose regions distillation reads."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from torch import nn


def is_cascade(detector: nn.Module) -> bool:
    """Whether the detector's R-CNN has one bbox head per stage (Cascade
    R-CNN)."""
    roi_head = getattr(detector, 'roi_head', None)
    return isinstance(getattr(roi_head, 'bbox_head', None), nn.ModuleList)


class RCNNStage(NamedTuple):
    """The R-CNN stage whose regions the capture reads.

    Attributes:
        extractor: Its RoI feature extractor.
        bbox_head: Its bbox head.
        assigner: Its region assigner (``None`` without ``train_cfg``).
        sampler: Its region sampler (``None`` without ``train_cfg``).
        stage: Its index for Cascade R-CNN; ``None`` for one-stage
            R-CNNs (``StandardRoIHead``).
    """
    extractor: nn.Module
    bbox_head: nn.Module
    assigner: Any
    sampler: Any
    stage: Optional[int]


def rcnn_stage(detector: nn.Module) -> RCNNStage:
    """The R-CNN's region stage: the only one of a ``StandardRoIHead``, or
    the first of Cascade R-CNN's, whose regions are sampled from the
    proposals at IoU 0.5 as Faster R-CNN's are (the later stages refine
    them)."""
    roi_head = detector.roi_head
    assigner = getattr(roi_head, 'bbox_assigner', None)
    sampler = getattr(roi_head, 'bbox_sampler', None)
    if not is_cascade(detector):
        return RCNNStage(roi_head.bbox_roi_extractor, roi_head.bbox_head,
                         assigner, sampler, None)
    return RCNNStage(roi_head.bbox_roi_extractor[0], roi_head.bbox_head[0],
                     assigner[0] if assigner else None,
                     sampler[0] if sampler else None, 0)
