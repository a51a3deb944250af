"""Bring the targets of mmdet's dense heads into one layout."""
from __future__ import annotations

from typing import List, Sequence

import torch
from mmdet.models.dense_heads import (AnchorFreeHead, AnchorHead, ATSSHead,
                                      FCOSHead, GFLHead, RTMDetHead)
from torch import Tensor, nn

from .record import DenseTargets


def _per_image(level_tensors: Sequence[Tensor], batch_size: int) -> List[Tensor]:
    """(B*N_l, ...) per level, images concatenated -> (B, N_l, ...)."""
    return [t.reshape(batch_size, -1, *t.shape[1:]) for t in level_tensors]


def dense_targets_readable(head: nn.Module) -> bool:
    """Whether :func:`normalize_dense_targets` reads this head's targets."""
    return (isinstance(head, AnchorHead) and not isinstance(head, RTMDetHead)
            ) or isinstance(head, FCOSHead)


def check_dense_targets_readable(head: nn.Module, role: str) -> None:
    """Raise, naming the reason, unless the ``role``'s head's targets are
    read (:func:`dense_targets_readable`)."""
    if not dense_targets_readable(head):
        raise NotImplementedError(
            f'This distiller reads the {role}\'s dense-head targets, which '
            f'sea_kd cannot read yet for a {type(head).__name__} (supported: '
            'AnchorHead subclasses such as RetinaNet, ATSS and GFL heads, and '
            'FCOS heads; RTMDet\'s targets are assignment metrics, YOLOX\'s '
            'are built inside its loss). Methods that read only the neck '
            '(FI, PKD, CWD, MGD, FGD, SEA) work with it.')


def normalize_dense_targets(head: nn.Module, output: tuple,
                            batch_size: int) -> DenseTargets:
    """Convert the output of ``head.get_targets`` to :class:`DenseTargets`.

    Supported: ``AnchorHead`` and its subclasses (RetinaNet, ...), including
    ``ATSSHead`` and ``GFLHead`` (and ``LDHead``) whose output starts with
    the anchors, and ``FCOSHead``-style
    ``AnchorFreeHead`` subclasses, which return labels and box targets with
    the images concatenated per level and have no label weights.

    Args:
        head: The dense head that produced the targets.
        output: What ``head.get_targets`` returned during the loss.
        batch_size: Number of images in the batch.

    Returns:
        DenseTargets: per-level tensors of shape (B, N_l, ...).
    """
    check_dense_targets_readable(head, 'student')
    if isinstance(head, AnchorHead):
        if isinstance(head, (ATSSHead, GFLHead)):
            output = output[1:]
        labels, label_weights, bbox_targets, bbox_weights, avg_factor = \
            output[:5]
        return DenseTargets(list(labels), list(label_weights),
                            list(bbox_targets), list(bbox_weights),
                            float(avg_factor))
    if isinstance(head, AnchorFreeHead) and len(output) == 2:
        labels = _per_image(output[0], batch_size)
        bbox_targets = _per_image(output[1], batch_size)
        positive = [(lab >= 0) & (lab < head.num_classes) for lab in labels]
        label_weights = [torch.ones_like(lab, dtype=torch.float)
                         for lab in labels]
        bbox_weights = [pos.float().unsqueeze(-1).expand_as(box)
                        for pos, box in zip(positive, bbox_targets)]
        num_pos = float(torch.cat([pos.flatten() for pos in positive]).sum())
        return DenseTargets(labels, label_weights, bbox_targets, bbox_weights,
                            max(num_pos, 1.0))
    raise NotImplementedError(
        f'{type(head).__name__}.get_targets returned {len(output)} items; '
        'an FCOS-style head returns labels and box targets.')
