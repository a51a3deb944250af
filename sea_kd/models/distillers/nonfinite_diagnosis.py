"""What to tell the user when a distillation loss is NaN or infinite."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from mmdet.structures import SampleList
from mmengine.logging import MessageHub
from torch import Tensor

from ..capture import DistillRecord


class NonFiniteDistillLossError(FloatingPointError):
    """A distillation loss term was NaN or infinite."""


def current_iteration() -> Optional[int]:
    """The Runner's 0-based training iteration, if a Runner is training."""
    return MessageHub.get_current_instance().get_info('iter')


def _tensor_stats(tensors: Sequence[Tensor]) -> str:
    """min/max/mean/std over the finite values, and the non-finite count."""
    flat = torch.cat([t.detach().float().reshape(-1) for t in tensors])
    finite = torch.isfinite(flat)
    bad = int((~finite).sum())
    values = flat[finite]
    if values.numel() == 0:
        return f'no finite value ({flat.numel()} non-finite)'
    text = (f'min {values.min().item():.4g}, max {values.max().item():.4g}, '
            f'mean {values.mean().item():.4g}, '
            f'std {values.std(unbiased=False).item():.4g}')
    return text + (f', {bad} NON-FINITE of {flat.numel()}'
                   if bad else ', all finite')


def _gt_summary(data_samples: SampleList) -> List[str]:
    lines = ['  ground truth:']
    for i, sample in enumerate(data_samples):
        meta = sample.metainfo
        ident = ', '.join(f'{key}={meta[key]}' for key in ('img_id',
                                                          'img_path')
                          if key in meta)
        gt = getattr(sample, 'gt_instances', None)
        if gt is None or 'bboxes' not in gt:
            boxes = 'no gt_instances'
        else:
            bboxes = torch.as_tensor(gt.bboxes.tensor if hasattr(
                gt.bboxes, 'tensor') else gt.bboxes)
            boxes = f'{len(bboxes)} GT boxes'
            if bboxes.numel() and not bool(torch.isfinite(bboxes).all()):
                boxes += ' (NON-FINITE coordinates)'
        lines.append(f'    image {i}: {boxes}' +
                     (f' ({ident})' if ident else ''))
    return lines


def _feature_lines(record: Optional[DistillRecord]) -> List[str]:
    if record is None:
        return []
    lines = []
    for label, feats in (('student neck', record.student_neck),
                         ('teacher neck', record.teacher_neck)):
        if feats:
            lines.append(f'  {label} features: {_tensor_stats(feats)}')
    for label, dense in (('student', record.student_dense),
                         ('teacher', record.teacher_dense)):
        if dense is not None and dense.cls_scores:
            lines.append(f'  {label} dense class logits: '
                         f'{_tensor_stats(dense.cls_scores)}')
    return lines


def describe_nonfinite_step(distiller_name: str,
                            bad_terms: Dict[str, float],
                            batch_inputs: Tensor,
                            data_samples: SampleList,
                            record: Optional[DistillRecord] = None) -> str:
    """A diagnosis of a step whose distillation loss is not finite.

    Names the terms and the iteration, summarises the step's inputs, ground
    truth and (when recorded) both models' features, and says what to try.

    Args:
        distiller_name: Class name of the distiller.
        bad_terms: ``{loss name: value}`` of the non-finite terms.
        batch_inputs: The preprocessed images of the step.
        data_samples: Their data samples.
        record: The step's distillation record, if any.

    Returns:
        A multi-line message.
    """
    iteration = current_iteration()
    where = ('at training iteration '
             f'{iteration + 1} (runner.iter {iteration})'
             if iteration is not None else 'outside a training Runner')
    terms = ', '.join(f'{name}={value}' for name, value in bad_terms.items())
    lines = [
        f'{distiller_name}: non-finite distillation loss {where}: {terms}.',
        f'  inputs (after the data preprocessor), shape '
        f'{tuple(batch_inputs.shape)}: {_tensor_stats([batch_inputs])}',
        *_gt_summary(data_samples),
        *_feature_lines(record),
        '  What to try: lower the distillation loss weight or the learning '
        'rate (or clip gradients); check that teacher_ckpt is a trained '
        'checkpoint of this teacher config (non-finite or huge teacher '
        'features point there); ramp distillation up with '
        "dict(type='DistillLossWeightHook', warmup=...) in custom_hooks; "
        "or set nonfinite_loss='skip' in the distiller to skip such steps "
        '(see docs/training_controls.md).',
    ]
    return '\n'.join(lines)
