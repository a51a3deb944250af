"""The built-in record parts, in record order (the registry keeps the order
of definition): neck features, dense-head outputs and targets, the dense
head's classification tower, R-CNN regions, DETR decoder outputs."""
from __future__ import annotations

from contextlib import ExitStack
from typing import List

from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from ..detectors import (checked_dense_view, is_dense_detector,
                         is_query_detector, is_two_stage_detector,
                         query_head_view, rcnn_stage)
from .method_tap import MethodTap
from .query_outputs import (check_query_head, query_outputs,
                            teacher_query_forward)
from .record import DenseHeadOutputs, DistillRecord, RoIRecord
from .record_part import RecordPart, StudentFill, register_record_part
from .roi_forward import representation, shared_fc_tap, teacher_roi_forward


def dense_outputs(raw: tuple) -> DenseHeadOutputs:
    """The head's per-level outputs; a single map (RTMDet-Ins's mask
    feature) is not a per-level output and is left out of ``extras``."""
    return DenseHeadOutputs(
        list(raw[0]), list(raw[1]),
        tuple(list(x) for x in raw[2:] if isinstance(x, (list, tuple))))


def last_tower_layers(head: nn.Module) -> List[nn.Module]:
    """The last layer of the head's classification tower: one module run
    once per level (``cls_convs[-1]``), or, for heads with one tower per
    level (RTMDet's separate-BN head, ``cls_convs[level]``), each level's
    last layer, in level order."""
    convs = head.cls_convs
    if isinstance(convs[0], nn.ModuleList):
        return [level[-1] for level in convs]
    return [convs[-1]]


@register_record_part
class NeckPart(RecordPart):
    """The neck features (``extract_feat``) of both detectors; recorded in
    every step."""
    name = 'neck'
    teacher_modules = ('backbone', 'neck')

    def tap_student(self, student: nn.Module,
                    stack: ExitStack) -> StudentFill:
        tap = stack.enter_context(MethodTap(student, 'extract_feat'))

        def fill(record: DistillRecord, inputs: Tensor) -> None:
            record.student_neck = tuple(tap.first.output)
        return fill

    def run_teacher(self, teacher: nn.Module, inputs: Tensor,
                    record: DistillRecord) -> None:
        if teacher.training:
            raise RuntimeError('The teacher must stay in eval mode.')
        record.teacher_neck = tuple(teacher.extract_feat(inputs))


@register_record_part
class DenseHeadPart(RecordPart):
    """A one-stage detector's raw dense-head outputs (``bbox_head.forward``)
    and, for the student, the assigner's targets as the head's view reads
    them."""
    name = 'dense_head'
    requirement = 'reads dense-head outputs'
    teacher_modules = ('bbox_head', )

    def check(self, detector: nn.Module, role: str) -> None:
        if not is_dense_detector(detector):
            raise TypeError(
                f'This distiller needs dense-head outputs, but the {role} is '
                f'a {type(detector).__name__}, not a one-stage detector '
                '(SingleStageDetector: RetinaNet, FCOS, ATSS, ...).')
        checked_dense_view(detector.bbox_head, role)

    def tap_student(self, student: nn.Module,
                    stack: ExitStack) -> StudentFill:
        view = checked_dense_view(student.bbox_head, 'student')
        out_tap = stack.enter_context(MethodTap(student.bbox_head, 'forward'))
        target_taps = [stack.enter_context(MethodTap(module, name))
                       for module, name in view.target_tap_points()]

        def fill(record: DistillRecord, inputs: Tensor) -> None:
            record.student_dense = dense_outputs(out_tap.first.output)
            record.dense_targets = view.read_targets(
                target_taps, inputs.shape[0],
                [c.shape[-2] * c.shape[-1]
                 for c in record.student_dense.cls_scores])
        return fill

    def run_teacher(self, teacher: nn.Module, inputs: Tensor,
                    record: DistillRecord) -> None:
        record.teacher_dense = dense_outputs(
            teacher.bbox_head(record.teacher_neck))


@register_record_part
class DenseTowerPart(RecordPart):
    """The student's last classification-tower layer output per level
    (``bbox_head.cls_convs[-1]``)."""
    name = 'dense_tower'
    requirement = 'reads a dense classification tower'

    def check(self, detector: nn.Module, role: str) -> None:
        convs = getattr(getattr(detector, 'bbox_head', None), 'cls_convs',
                        None)
        if not convs:
            raise ValueError(
                f'This distiller reads the {role} dense head\'s '
                'classification tower (bbox_head.cls_convs), but the '
                f'{type(detector).__name__} has none (stacked_convs=0 or '
                'another head type). Use a RetinaNet/FCOS-like head with '
                'stacked convs.')

    def tap_student(self, student: nn.Module,
                    stack: ExitStack) -> StudentFill:
        taps = [stack.enter_context(MethodTap(layer, 'forward'))
                for layer in last_tower_layers(student.bbox_head)]

        def fill(record: DistillRecord, inputs: Tensor) -> None:
            if not all(tap.calls for tap in taps):
                raise RuntimeError(
                    'The last layer of the student\'s classification tower '
                    '(bbox_head.cls_convs) did not run during its loss; its '
                    'tower cannot be recorded.')
            record.student_cls_tower = [call.output for tap in taps
                                        for call in tap.calls]
        return fill


@register_record_part
class RoIPart(RecordPart):
    """The student's sampled R-CNN regions with their targets and outputs
    (``roi_head.bbox_loss``, ``bbox_head.loss_and_target``); the teacher's
    R-CNN branch runs on the same regions after the student."""
    name = 'roi'
    requirement = 'reads R-CNN regions'
    teacher_modules = ('roi_head', )
    teacher_after_student = True

    def check(self, detector: nn.Module, role: str) -> None:
        if not is_two_stage_detector(detector):
            raise TypeError(
                f'This distiller needs R-CNN region outputs, but the {role} '
                f'is a {type(detector).__name__}, not a two-stage detector '
                '(TwoStageDetector: Faster R-CNN, Mask R-CNN, ...).')

    def tap_student(self, student: nn.Module,
                    stack: ExitStack) -> StudentFill:
        roi_head, stage = student.roi_head, rcnn_stage(student)
        bbox_tap = stack.enter_context(MethodTap(roi_head, 'bbox_loss'))
        target_tap = stack.enter_context(
            MethodTap(stage.bbox_head, 'loss_and_target'))
        repr_tap = shared_fc_tap(stage.bbox_head)
        if repr_tap is not None:
            stack.enter_context(repr_tap)

        def fill(record: DistillRecord, inputs: Tensor) -> None:
            if stage.stage is None:
                bbox_call = bbox_tap.first
                sampling_results = bbox_call.args[1]
            else:  # Cascade: bbox_loss(stage, x, sampling_results) per stage
                bbox_call = next(c for c in bbox_tap.calls
                                 if c.args[0] == stage.stage)
                sampling_results = bbox_call.args[2]
            bbox_results = bbox_call.output
            labels, label_weights, bbox_targets, bbox_weights = \
                target_tap.first.output['bbox_targets']
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
                student_repr=representation(repr_tap))
        return fill

    def run_teacher(self, teacher: nn.Module, inputs: Tensor,
                    record: DistillRecord) -> None:
        if record.roi is not None:
            teacher_roi_forward(teacher, record.teacher_neck, record.roi)


@register_record_part
class QueryPart(RecordPart):
    """A DETR-family head's decoder outputs, every layer, the matching
    queries only (a DINO student's denoising queries are left out), and
    the keyword arguments of each detector's ``forward_decoder`` call."""
    name = 'queries'
    requirement = 'needs DETR-family decoders'
    teacher_modules = ('encoder', 'decoder', 'bbox_head')

    def check(self, detector: nn.Module, role: str) -> None:
        if not is_query_detector(detector):
            raise TypeError(
                f'This distiller reads DETR-family decoder outputs, but the '
                f'{role} is a {type(detector).__name__}, not a '
                'DetectionTransformer (DETR, Deformable DETR, DINO, ...).')
        check_query_head(detector, role)

    def tap_student(self, student: nn.Module,
                    stack: ExitStack) -> StudentFill:
        head = student.bbox_head
        out_tap = stack.enter_context(MethodTap(head, 'forward'))
        loss_tap = stack.enter_context(MethodTap(head, 'loss'))
        decoder_tap = stack.enter_context(
            MethodTap(student, 'forward_decoder'))

        def fill(record: DistillRecord, inputs: Tensor) -> None:
            dn_meta = loss_tap.first.kwargs.get('dn_meta')
            if dn_meta is None and query_head_view(head).denoising:
                raise RuntimeError(
                    f'The student\'s {type(head).__name__}.loss was called '
                    'without `dn_meta`, so its denoising queries cannot be '
                    'told from its matching queries; call it as mmdet\'s '
                    'DINO.loss does (bbox_head.loss(**head_inputs_dict, '
                    '...)).')
            record.student_queries = query_outputs(
                out_tap.first.output, dn_meta, decoder_tap.first.kwargs)
        return fill

    def run_teacher(self, teacher: nn.Module, inputs: Tensor,
                    record: DistillRecord) -> None:
        # before the student's forward, while little memory is held: at
        # COCO scale on the CPU the teacher's transformer took 7.8 s after
        # it against 4.4 s before it (docs/results.md)
        record.teacher_queries = teacher_query_forward(
            teacher, record.teacher_neck, record.data_samples)


__all__ = ['NeckPart', 'DenseHeadPart', 'DenseTowerPart', 'RoIPart',
           'QueryPart', 'dense_outputs', 'last_tower_layers']
