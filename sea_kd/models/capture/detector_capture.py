"""Run the student's own loss once and the teacher once, recording parts.

The student runs its unmodified ``loss()``; each record part
(:mod:`.record_parts`) taps the calls it needs (:class:`MethodTap`): the
neck features (``extract_feat``), the dense head's raw outputs and
assigner targets, its last classification-tower layer, the R-CNN's sampled
regions, outputs and targets, or a DETR head's decoder outputs. The
teacher runs only the modules of the parts asked for, under
``torch.no_grad()``, on the same images: backbone and neck, then the
parts that read only them (dense head, transformer) before the student,
so that its predictions can serve as pseudo labels; the parts that read
the student's side (the R-CNN branch on the student's sampled RoIs)
after it.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmdet.structures import SampleList
from torch import Tensor, nn

from .record import DenseHeadOutputs, DistillRecord
from .record_part import record_parts


def student_loss_into(student: nn.Module, inputs: Tensor,
                      record: DistillRecord) -> Dict[str, Tensor]:
    """Run ``student.loss`` once on the record's images and fill the
    student's side of the record's parts (the neck always).

    Args:
        student: An mmdet detector.
        inputs: The preprocessed batch (B, 3, H, W).
        record: The step's record: its ``data_samples`` (with ground truth)
            and ``parts``.

    Returns:
        dict: The student's own losses.
    """
    with ExitStack() as stack:
        fills = [part.tap_student(student, stack)
                 for part in record_parts(('neck', *record.parts))]
        losses = student.loss(inputs, record.data_samples)
    for fill in fills:
        fill(record, inputs)
    return losses


def student_loss_with_record(
        student: nn.Module, inputs: Tensor, data_samples: SampleList,
        parts: Sequence[str]) -> Tuple[Dict[str, Tensor], DistillRecord]:
    """Run ``student.loss`` once and record the requested parts.

    Args:
        student: An mmdet detector.
        inputs: The preprocessed batch (B, 3, H, W).
        data_samples: The batch's data samples with ground truth.
        parts: Names of the record parts to fill (:data:`RECORD_PARTS`).

    Returns:
        tuple: The student's own losses and a :class:`DistillRecord` holding
        the student's side of the requested parts.
    """
    record = DistillRecord(data_samples=data_samples, parts=tuple(parts))
    return student_loss_into(student, inputs, record), record


@torch.no_grad()
def run_teacher_parts(teacher: nn.Module, inputs: Tensor,
                      record: DistillRecord, parts: Sequence[str],
                      after_student: bool) -> None:
    """Fill the teacher's side of ``record`` for ``parts`` under
    ``torch.no_grad()``: before the student, the neck (always) and the parts
    that read only it; after the student, the parts that read its side
    (:attr:`RecordPart.teacher_after_student`)."""
    names = parts if after_student else ('neck', *parts)
    for part in record_parts(names):
        if part.teacher_after_student == after_student:
            part.run_teacher(teacher, inputs, record)


def teacher_dense_forward(
        teacher: nn.Module, inputs: Tensor, parts: Sequence[str]
) -> Tuple[Tuple[Tensor, ...], Optional[DenseHeadOutputs]]:
    """Run the frozen teacher's backbone and neck, and its dense head when
    ``parts`` holds ``'dense_head'``, under ``torch.no_grad()``.

    Returns:
        tuple: The neck features and the dense-head outputs (or ``None``).
    """
    record = DistillRecord(data_samples=[])
    run_teacher_parts(teacher, inputs, record,
                      [p for p in parts if p == 'dense_head'],
                      after_student=False)
    return record.teacher_neck, record.teacher_dense
