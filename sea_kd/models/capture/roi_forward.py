"""The R-CNN branch of a two-stage detector: the student's region
representation tap and the teacher's forward on given regions."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from ..detectors import rcnn_stage
from ..utils.precision import at_least_fp32, levels_at_least_fp32
from ..utils.sparse_roi_align import sparse_roi_layers
from .method_tap import MethodTap
from .record import RoIRecord


def shared_fc_tap(bbox_head: nn.Module) -> Optional[MethodTap]:
    """A tap on the last shared FC layer of an R-CNN bbox head, or ``None``.

    ``ConvFCBBoxHead`` (``Shared2FCBBoxHead``, ``Shared4Conv1FCBBoxHead``)
    computes ``x = relu(fc(x))`` for each of its ``shared_fcs``; the last
    one's output after the ReLU is the region representation its class and
    box predictors read.
    """
    fcs = getattr(bbox_head, 'shared_fcs', None)
    if fcs is None or len(fcs) == 0:
        return None
    return MethodTap(fcs[-1], 'forward')


def representation(tap: Optional[MethodTap]) -> Optional[Tensor]:
    """The tapped shared-FC output after the head's ReLU (applying it again
    is a no-op when the head's ReLU ran in place)."""
    if tap is None:
        return None
    return torch.relu(tap.first.output)


@torch.no_grad()
def teacher_region_forward(teacher: nn.Module, feats: Sequence[Tensor],
                           rois: Tensor) -> Dict[str, Optional[Tensor]]:
    """Run the frozen teacher's R-CNN bbox branch on given regions.

    Args:
        teacher: A two-stage detector in eval mode.
        feats: The teacher's neck features.
        rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]``.

    Runs in float32 with autocast off, also under mixed precision: the
    outputs are distillation targets, and mmcv's CPU RoIAlign has no
    half-precision kernel. On the CPU the teacher's average-mode RoIAlign
    layers are computed by ``SparseRoIAlign`` (same values, less time).

    Returns:
        dict: ``bbox_feats`` (K, C, h, w), the RoI features of the level the
        teacher's RoI extractor maps each region to; ``cls_score`` (K, C+1);
        ``bbox_pred`` (K, 4 or 4*C); ``repr`` (K, D), the last shared FC
        output (``None`` when the head has none). All without gradient.
    """
    if teacher.training:
        raise RuntimeError('The teacher must stay in eval mode.')
    roi_head, stage = teacher.roi_head, rcnn_stage(teacher)
    tap = shared_fc_tap(stage.bbox_head)
    with ExitStack() as stack:
        if tap is not None:
            stack.enter_context(tap)
        stack.enter_context(torch.autocast(rois.device.type, enabled=False))
        stack.enter_context(sparse_roi_layers(
            stage.extractor, enabled=rois.device.type == 'cpu'))
        args = (levels_at_least_fp32(feats), at_least_fp32(rois))
        if stage.stage is not None:  # Cascade: the first stage's head
            args = (stage.stage, ) + args
        results = roi_head._bbox_forward(*args)
    return dict(bbox_feats=results['bbox_feats'],
                cls_score=results['cls_score'],
                bbox_pred=results['bbox_pred'],
                repr=representation(tap))


@torch.no_grad()
def teacher_roi_forward(teacher: nn.Module, feats: Sequence[Tensor],
                        roi: RoIRecord) -> None:
    """Run the teacher's R-CNN bbox branch on the student's sampled RoIs and
    fill the teacher's side of ``roi``."""
    results = teacher_region_forward(teacher, feats, roi.rois)
    roi.teacher_feats = results['bbox_feats']
    roi.teacher_cls = results['cls_score']
    roi.teacher_reg = results['bbox_pred']
    roi.teacher_repr = results['repr']
