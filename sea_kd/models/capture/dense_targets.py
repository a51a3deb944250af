"""Bring the targets of mmdet's dense heads into one layout."""
from __future__ import annotations

from typing import List, Sequence

import torch
from mmdet.models.dense_heads import (AnchorFreeHead, AnchorHead, ATSSHead,
                                      FCOSHead, GFLHead, RTMDetHead,
                                      YOLOXHead)
from torch import Tensor, nn

from .method_tap import RecordedCall
from .record import DenseTargets


def _per_image(level_tensors: Sequence[Tensor], batch_size: int) -> List[Tensor]:
    """(B*N_l, ...) per level, images concatenated -> (B, N_l, ...)."""
    return [t.reshape(batch_size, -1, *t.shape[1:]) for t in level_tensors]


def dense_targets_readable(head: nn.Module) -> bool:
    """Whether the capture reads this head's targets
    (:func:`normalize_dense_targets`, or :func:`yolox_dense_targets`)."""
    return isinstance(head, (AnchorHead, FCOSHead, YOLOXHead))


def regresses_boxes(head: nn.Module) -> bool:
    """Whether the head's regression targets are boxes (x1, y1, x2, y2) in
    input pixels rather than codes of its box coder: ``reg_decoded_bbox``
    heads (ATSS, GFL), RTMDet and YOLOX, whose losses compare decoded
    boxes."""
    return bool(getattr(head, 'reg_decoded_bbox', False)) or \
        isinstance(head, (RTMDetHead, YOLOXHead))


def check_dense_targets_readable(head: nn.Module, role: str) -> None:
    """Raise, naming the reason, unless the ``role``'s head's targets are
    read (:func:`dense_targets_readable`)."""
    if not dense_targets_readable(head):
        raise NotImplementedError(
            f'This distiller reads the {role}\'s dense-head targets, which '
            f'sea_kd cannot read yet for a {type(head).__name__} (supported: '
            'AnchorHead subclasses such as RetinaNet, ATSS, GFL and RTMDet '
            'heads, FCOS and YOLOX heads). Methods that read only the neck '
            '(FI, PKD, CWD, MGD, FGD, SEA) work with it.')


def normalize_dense_targets(head: nn.Module, output: tuple,
                            batch_size: int) -> DenseTargets:
    """Convert the output of ``head.get_targets`` to :class:`DenseTargets`.

    Supported: ``AnchorHead`` and its subclasses (RetinaNet, ...), including
    ``ATSSHead`` and ``GFLHead`` (and ``LDHead``) whose output starts with
    the anchors; ``RTMDetHead`` and its subclasses, whose output is the
    anchors, labels, label weights, boxes, assignment metrics and sampling
    results (the metrics become ``quality``; its loss weighs each positive's
    box by its metric and divides both terms by the metrics' sum, so they
    are also the box weights and the normaliser); and ``FCOSHead``-style
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
    if isinstance(head, YOLOXHead):
        raise TypeError('YOLOX builds its targets image by image inside '
                        'its loss; read them with yolox_dense_targets.')
    if output is None:
        raise RuntimeError(
            f'{type(head).__name__}.get_targets found no valid prior in the '
            'batch; check the images\' sizes against the head\'s strides.')
    if isinstance(head, RTMDetHead):
        labels, label_weights, bbox_targets, metrics = output[1:5]
        bbox_weights = [m.unsqueeze(-1).expand_as(box)
                        for m, box in zip(metrics, bbox_targets)]
        total = float(sum(m.sum() for m in metrics))
        return DenseTargets(list(labels), list(label_weights),
                            list(bbox_targets), bbox_weights,
                            max(total, 1.0), quality=list(metrics))
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


def yolox_dense_targets(head: nn.Module, target_calls: Sequence[RecordedCall],
                        sample_calls: Sequence[RecordedCall],
                        num_per_level: Sequence[int]) -> DenseTargets:
    """The targets ``YOLOXHead.loss_by_feat`` built, in one layout.

    YOLOX assigns each image inside its loss (``_get_targets_single``, one
    call per image; SimOTA, then ``sampler.sample`` for the images with
    ground truth) and keeps only the positives' targets. Here they are
    scattered back to every prior: the label and box of each positive
    (background ``num_classes`` elsewhere), its IoU with its box as
    ``quality`` (the loss's class target is ``one_hot(label) · IoU``), the
    positives as box weights, every prior with label weight 1 (objectness
    is trained on every prior) and the number of positives as the
    normaliser.

    Args:
        head: The YOLOX head.
        target_calls: The recorded ``_get_targets_single`` calls, in image
            order.
        sample_calls: The recorded ``head.sampler.sample`` calls, one per
            image with ground truth, in image order.
        num_per_level: Priors per level (H_l * W_l).

    Returns:
        DenseTargets: per-level tensors of shape (B, N_l, ...).
    """
    samples = iter(sample_calls)
    labels, boxes, quality = [], [], []
    # one recorded call per image, each with its own number of positives
    # (mmdet's own loss assigns image by image too)
    for call in target_calls:
        foreground = call.output[0]
        label = torch.full_like(foreground, head.num_classes,
                                dtype=torch.long)
        box = call.output[3].new_zeros((foreground.shape[0], 4))
        iou = box.new_zeros(foreground.shape[0])
        if len(call.args[4]):  # this image's ground truth
            sample = next(samples)
            result, pos = sample.output, sample.output.pos_inds
            if not torch.equal(torch.nonzero(foreground).flatten().sort()[0],
                               pos.sort()[0]):
                raise RuntimeError(
                    'The recorded YOLOX sampling does not match its '
                    'foreground mask; the capture lost the image order.')
            label[pos] = result.pos_gt_labels
            box[pos] = result.pos_gt_bboxes.to(box.dtype)
            iou[pos] = sample.args[0].max_overlaps[pos].to(iou.dtype)
        labels.append(label)
        boxes.append(box)
        quality.append(iou)
    if next(samples, None) is not None:
        raise RuntimeError('More YOLOX samplings were recorded than images '
                           'with ground truth.')
    labels, boxes, quality = (torch.stack(x) for x in (labels, boxes,
                                                       quality))
    positive = labels < head.num_classes

    def split(t: Tensor) -> List[Tensor]:
        return list(torch.split(t, list(num_per_level), dim=1))

    return DenseTargets(
        labels=split(labels),
        label_weights=split(torch.ones_like(quality)),
        bbox_targets=split(boxes),
        bbox_weights=split(positive.unsqueeze(-1).expand_as(boxes).to(
            boxes.dtype)),
        avg_factor=max(float(positive.sum()), 1.0),
        quality=split(quality))
