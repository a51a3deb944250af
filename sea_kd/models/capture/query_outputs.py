"""Decoder outputs of DETR-family detectors (DETR, Deformable DETR, DINO).

The student's come from its own ``bbox_head.forward`` call inside its loss
(recorded by :func:`~.detector_capture.student_loss_with_record`); the
teacher's from its transformer and head run under ``torch.no_grad()``
(:func:`teacher_query_forward`).
"""
from __future__ import annotations

import inspect
from typing import Optional, Sequence

import torch
from mmdet.structures import SampleList
from torch import Tensor, nn

from ..detectors import query_head_view
from ..utils.precision import at_least_fp32, levels_at_least_fp32
from .method_tap import MethodTap
from .record import QueryOutputs


def uses_sigmoid_classes(detector: nn.Module) -> bool:
    """Whether the DETR head classifies with one sigmoid per class (no
    "no object" logit), as Deformable DETR and DINO do; DETR's softmax
    head has one more logit (the head's view)."""
    return query_head_view(detector.bbox_head).uses_sigmoid_classes


def check_query_head(detector: nn.Module, role: str) -> None:
    """Raise for DETR-family heads whose training outputs hold more than
    denoising and matching queries (DDQ-DETR's dense one-to-many
    queries), which :func:`query_outputs` cannot separate yet."""
    head = detector.bbox_head
    view = query_head_view(head)
    if view is None:
        raise TypeError(
            f'The {role}\'s {type(head).__name__} is not a DETR-family '
            'head (DETRHead and its subclasses), whose decoder outputs '
            'sea_kd reads; distil its neck (FI, PKD, CWD) instead.')
    if not view.separable:
        raise TypeError(
            f'The {role}\'s {type(head).__name__} adds dense one-to-many '
            'queries to its training outputs, which sea_kd does not '
            'separate from the matching queries yet; distil its neck (FI, '
            'PKD, CWD) instead.')


def query_outputs(head_outputs: Sequence[Tensor],
                  dn_meta: Optional[dict] = None,
                  decoder_inputs: Optional[dict] = None) -> QueryOutputs:
    """A DETR head's ``forward`` outputs as :class:`QueryOutputs`.

    Args:
        head_outputs: ``(all_layers_cls_scores, all_layers_bbox_preds)``,
            each (L, B, Q, ·); further outputs are ignored.
        dn_meta: DINO's denoising meta of the step, or ``None``; its
            ``num_denoising_queries`` first queries are left out.
        decoder_inputs: The keyword arguments of the detector's
            ``forward_decoder`` call of the step, kept as they are.
    """
    cls_scores, bbox_preds = head_outputs[0], head_outputs[1]
    if dn_meta is not None:
        first = dn_meta['num_denoising_queries']
        cls_scores, bbox_preds = cls_scores[:, :, first:], \
            bbox_preds[:, :, first:]
    return QueryOutputs(cls_scores, bbox_preds, decoder_inputs)


@torch.no_grad()
def teacher_query_forward(teacher: nn.Module, feats: Sequence[Tensor],
                          data_samples: SampleList) -> QueryOutputs:
    """Run the frozen teacher's transformer and head on its neck features.

    In eval mode DINO builds no denoising queries, so every query of the
    result is a matching query. The transformer and head run in float32
    with autocast off (a teacher stored or run in half precision keeps
    float32 distillation targets). The keyword arguments of its
    ``forward_decoder`` call are kept in the result's ``decoder_inputs``.

    Args:
        teacher: A ``DetectionTransformer`` in eval mode.
        feats: Its neck features of the step.
        data_samples: The batch's data samples (image and batch shapes,
            for the transformer's padding masks).
    """
    if teacher.training:
        raise RuntimeError('The teacher must stay in eval mode.')
    # float32 with autocast off, also under mixed precision: the outputs
    # are distillation targets
    with torch.autocast(feats[0].device.type, enabled=False), \
            MethodTap(teacher, 'forward_decoder') as decoder_tap:
        head_inputs = teacher.forward_transformer(
            tuple(levels_at_least_fp32(feats)), data_samples)
        wanted = inspect.signature(teacher.bbox_head.forward).parameters
        outputs = teacher.bbox_head(
            **{k: v for k, v in head_inputs.items() if k in wanted})
    return QueryOutputs(at_least_fp32(outputs[0]), at_least_fp32(outputs[1]),
                        decoder_tap.first.kwargs)
