"""Run the student's own loss once and the teacher once, recording parts.

The student runs its unmodified ``loss()``; :class:`MethodTap` records the
neck features (``extract_feat``), a DETR head's decoder outputs
(``bbox_head.forward``, with DINO's denoising queries left out), the
dense head's raw outputs
(``bbox_head.forward``), assigner targets (``bbox_head.get_targets``) and
the last classification-tower layer's output per level, or
the R-CNN's sampled regions and outputs (``roi_head.bbox_loss``), targets
(``roi_head.bbox_head.loss_and_target``) and region representations (the
last shared FC layer of the bbox head, when it has one). The teacher runs
only the parts asked for, under ``torch.no_grad()``, on the same images:
backbone, neck and dense head before the student (so that its predictions
can serve as pseudo labels), the R-CNN branch after it, on the student's
sampled RoIs.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from ..detectors import (checked_dense_view, is_dense_detector,
                         is_query_detector, is_two_stage_detector,
                         query_head_view, rcnn_stage)
from ..utils.precision import at_least_fp32, levels_at_least_fp32
from ..utils.sparse_roi_align import sparse_roi_layers
from .method_tap import MethodTap
from .query_outputs import check_query_head, query_outputs
from .record import RECORD_PARTS, DenseHeadOutputs, DistillRecord, RoIRecord


def _dense_outputs(raw: tuple) -> DenseHeadOutputs:
    """The head's per-level outputs; a single map (RTMDet-Ins's mask
    feature) is not a per-level output and is left out of ``extras``."""
    return DenseHeadOutputs(
        list(raw[0]), list(raw[1]),
        tuple(list(x) for x in raw[2:] if isinstance(x, (list, tuple))))


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


def _representation(tap: Optional[MethodTap]) -> Optional[Tensor]:
    """The tapped shared-FC output after the head's ReLU (applying it again
    is a no-op when the head's ReLU ran in place)."""
    if tap is None:
        return None
    return torch.relu(tap.first.output)


def last_tower_layers(head: nn.Module) -> List[nn.Module]:
    """The last layer of the head's classification tower: one module run
    once per level (``cls_convs[-1]``), or, for heads with one tower per
    level (RTMDet's separate-BN head, ``cls_convs[level]``), each level's
    last layer, in level order."""
    convs = head.cls_convs
    if isinstance(convs[0], nn.ModuleList):
        return [level[-1] for level in convs]
    return [convs[-1]]


def check_parts(detector: nn.Module, parts: Sequence[str], role: str) -> None:
    """Raise if ``detector`` cannot provide the requested record parts."""
    unknown = set(parts) - set(RECORD_PARTS)
    if unknown:
        raise ValueError(f'Unknown record parts {sorted(unknown)}; choose '
                         f'from {RECORD_PARTS}.')
    if 'dense_head' in parts and not is_dense_detector(detector):
        raise TypeError(
            f'This distiller needs dense-head outputs, but the {role} is a '
            f'{type(detector).__name__}, not a one-stage detector '
            '(SingleStageDetector: RetinaNet, FCOS, ATSS, ...).')
    if 'dense_head' in parts:
        checked_dense_view(detector.bbox_head, role)
    if 'dense_tower' in parts:
        convs = getattr(getattr(detector, 'bbox_head', None), 'cls_convs',
                        None)
        if not convs:
            raise ValueError(
                f'This distiller reads the {role} dense head\'s '
                'classification tower (bbox_head.cls_convs), but the '
                f'{type(detector).__name__} has none (stacked_convs=0 or '
                'another head type). Use a RetinaNet/FCOS-like head with '
                'stacked convs.')
    if 'queries' in parts and not is_query_detector(detector):
        raise TypeError(
            f'This distiller reads DETR-family decoder outputs, but the '
            f'{role} is a {type(detector).__name__}, not a '
            'DetectionTransformer (DETR, Deformable DETR, DINO, ...).')
    if 'queries' in parts:
        check_query_head(detector, role)
    if 'roi' in parts and not is_two_stage_detector(detector):
        raise TypeError(
            f'This distiller needs R-CNN region outputs, but the {role} is a '
            f'{type(detector).__name__}, not a two-stage detector '
            '(TwoStageDetector: Faster R-CNN, Mask R-CNN, ...).')


def student_loss_with_record(
        student: nn.Module, inputs: Tensor, data_samples: SampleList,
        parts: Sequence[str]) -> Tuple[Dict[str, Tensor], DistillRecord]:
    """Run ``student.loss`` once and record the requested parts.

    Args:
        student: An mmdet detector.
        inputs: The preprocessed batch (B, 3, H, W).
        data_samples: The batch's data samples with ground truth.
        parts: Record parts to fill, a subset of :data:`RECORD_PARTS`.

    Returns:
        tuple: The student's own losses and a :class:`DistillRecord` holding
        the student's side of the requested parts.
    """
    record = DistillRecord(data_samples=data_samples, parts=tuple(parts))
    with ExitStack() as stack:
        feat_tap = stack.enter_context(MethodTap(student, 'extract_feat'))
        if 'dense_head' in parts:
            view = checked_dense_view(student.bbox_head, 'student')
            out_tap = stack.enter_context(
                MethodTap(student.bbox_head, 'forward'))
            target_taps = [stack.enter_context(MethodTap(module, name))
                           for module, name in view.target_tap_points()]
        if 'dense_tower' in parts:
            tower_taps = [stack.enter_context(MethodTap(layer, 'forward'))
                          for layer in last_tower_layers(student.bbox_head)]
        if 'roi' in parts:
            roi_head, stage = student.roi_head, rcnn_stage(student)
            bbox_tap = stack.enter_context(MethodTap(roi_head, 'bbox_loss'))
            roi_target_tap = stack.enter_context(
                MethodTap(stage.bbox_head, 'loss_and_target'))
            repr_tap = shared_fc_tap(stage.bbox_head)
            if repr_tap is not None:
                stack.enter_context(repr_tap)
        if 'queries' in parts:
            query_tap = stack.enter_context(
                MethodTap(student.bbox_head, 'forward'))
            query_loss_tap = stack.enter_context(
                MethodTap(student.bbox_head, 'loss'))
        losses = student.loss(inputs, data_samples)

    record.student_neck = tuple(feat_tap.first.output)
    if 'dense_head' in parts:
        record.student_dense = _dense_outputs(out_tap.first.output)
        record.dense_targets = view.read_targets(
            target_taps, inputs.shape[0],
            [c.shape[-2] * c.shape[-1]
             for c in record.student_dense.cls_scores])
    if 'dense_tower' in parts:
        if not all(tap.calls for tap in tower_taps):
            raise RuntimeError(
                'The last layer of the student\'s classification tower '
                '(bbox_head.cls_convs) did not run during its loss; its '
                'tower cannot be recorded.')
        record.student_cls_tower = [call.output for tap in tower_taps
                                    for call in tap.calls]
    if 'queries' in parts:
        dn_meta = query_loss_tap.first.kwargs.get('dn_meta')
        if dn_meta is None and query_head_view(student.bbox_head).denoising:
            raise RuntimeError(
                f'The student\'s {type(student.bbox_head).__name__}.loss was '
                'called without `dn_meta`, '
                'so its denoising queries cannot be told from its matching '
                'queries; call it as mmdet\'s DINO.loss does '
                '(bbox_head.loss(**head_inputs_dict, ...)).')
        record.student_queries = query_outputs(query_tap.first.output,
                                               dn_meta)
    if 'roi' in parts:
        if stage.stage is None:
            bbox_call = bbox_tap.first
            sampling_results = bbox_call.args[1]
        else:  # Cascade: bbox_loss(stage, x, sampling_results) per stage
            bbox_call = next(c for c in bbox_tap.calls
                             if c.args[0] == stage.stage)
            sampling_results = bbox_call.args[2]
        bbox_results = bbox_call.output
        labels, label_weights, bbox_targets, bbox_weights = \
            roi_target_tap.first.output['bbox_targets']
        record.roi = RoIRecord(
            rois=bbox2roi([res.priors for res in sampling_results]),
            sampling_results=sampling_results,
            student_feats=bbox_results['bbox_feats'],
            student_cls=bbox_results['cls_score'],
            student_reg=bbox_results['bbox_pred'],
            labels=labels,
            label_weights=label_weights,
            bbox_targets=bbox_targets,
            bbox_weights=bbox_weights,
            student_repr=_representation(repr_tap))
    return losses, record


@torch.no_grad()
def teacher_dense_forward(
        teacher: nn.Module, inputs: Tensor, parts: Sequence[str]
) -> Tuple[Tuple[Tensor, ...], Optional[DenseHeadOutputs]]:
    """Run the frozen teacher's backbone and neck, and its dense head when
    ``parts`` holds ``'dense_head'``, under ``torch.no_grad()``.

    Returns:
        tuple: The neck features and the dense-head outputs (or ``None``).
    """
    if teacher.training:
        raise RuntimeError('The teacher must stay in eval mode.')
    feats = tuple(teacher.extract_feat(inputs))
    dense = _dense_outputs(teacher.bbox_head(feats)) \
        if 'dense_head' in parts else None
    return feats, dense


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
                repr=_representation(tap))


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
