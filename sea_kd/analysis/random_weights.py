"""Distiller configs with random weights and random inputs.

For checking and measuring configs whose data and pretrained weights are
absent (the COCO configs on a machine without COCO or a model zoo): the
teacher and student are built from their own configs with every
``Pretrained`` initialisation removed (so nothing is downloaded); a randomly
initialised teacher is written to a checkpoint file and loaded through the
distiller's own ``teacher_ckpt`` path; batches are random images of the
config's training scale with random boxes, preprocessed by the distiller's
data preprocessor.
"""
from __future__ import annotations

import copy
import hashlib
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.utils import to_2tuple

from ..utils.config_loading import load_model_cfg

RESIZES = ('Resize', 'RandomResize', 'RandomChoiceResize', 'FixShapeResize')


def without_pretrained(cfg: Any) -> Any:
    """A copy of a model config without any ``init_cfg`` of type
    ``Pretrained`` (nested ones included)."""

    def strip(node):
        if isinstance(node, dict):
            out = type(node)()
            for key, value in node.items():
                if key == 'init_cfg' and _is_pretrained(value):
                    continue
                out[key] = strip(value)
            return out
        if isinstance(node, (list, tuple)):
            kept = [strip(v) for v in node if not _is_pretrained(v)]
            return type(node)(kept)
        return node

    return strip(copy.deepcopy(cfg))


def _is_pretrained(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get('type') == 'Pretrained'
    if isinstance(node, (list, tuple)):
        return bool(node) and all(_is_pretrained(v) for v in node)
    return False


def with_num_classes(node: Any, num_classes: int) -> Any:
    """A copy of a model config with every ``num_classes`` set (every head:
    dense, R-CNN stages, masks)."""
    if isinstance(node, dict):
        return type(node)({k: num_classes if k == 'num_classes' else
                           with_num_classes(v, num_classes)
                           for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(with_num_classes(v, num_classes) for v in node)
    return node


def random_weights_config(cfg: Config, work_dir: str,
                          num_classes: Optional[int] = None) -> Config:
    """The distiller config ``cfg`` with random weights.

    The student and teacher model configs are inlined without pretrained
    initialisation; a randomly initialised teacher is saved to
    ``<work_dir>/random_teacher_<digest>.pth`` (named by its model config,
    so configs sharing a teacher in one work dir share the file) and set as
    ``teacher_ckpt``; ``student_ckpt`` is dropped.

    Args:
        cfg: A distiller config (``model.student``, ``model.teacher``).
        work_dir: Where the random teacher checkpoint is written.
        num_classes: Set every head's class count of both models to it;
            ``None`` keeps the configs'.

    Returns:
        Config: A copy of ``cfg``.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    if 'student' not in model or 'teacher' not in model:
        raise ValueError('random_weights_config needs a distiller config '
                         '(with model.student and model.teacher).')
    model.student = without_pretrained(load_model_cfg(model.student,
                                                      'student'))
    model.teacher = without_pretrained(load_model_cfg(model.teacher,
                                                      'teacher'))
    if num_classes is not None:
        model.student = with_num_classes(model.student, num_classes)
        model.teacher = with_num_classes(model.teacher, num_classes)
    digest = hashlib.sha1(repr(model.teacher).encode()).hexdigest()[:12]
    path = osp.join(work_dir, f'random_teacher_{digest}.pth')
    if not osp.exists(path):
        teacher = MODELS.build(copy.deepcopy(model.teacher))
        teacher.init_weights()
        torch.save(dict(state_dict=teacher.state_dict(), meta=dict()),
                   path + '.part')
        os.replace(path + '.part', path)
    model.teacher_ckpt = path
    if model.teacher.get('type') == 'BackboneTeacher':
        # the random checkpoint holds the teacher's own keys
        model.teacher.ckpt_prefix = None
    if model.get('student_ckpt'):
        model.student_ckpt = None
    return cfg


Size = Tuple[float, float]


def _pair(value: Any) -> Size:
    """``(w, h)`` of a scale given as one number or a pair."""
    w, h = to_2tuple(value)
    return float(w), float(h)


def _resized(resize: dict, sizes: List[Size]) -> List[Size]:
    """The largest ``(w, h)`` a resize transform can give.

    mmcv reads ``scale`` as ``(w, h)`` (one number: a square); with
    ``keep_ratio`` it only bounds the long and the short edge, so both
    orientations are kept. ``RandomResize``'s ``ratio_range`` multiplies
    its scale by up to the largest ratio; given two scales instead, each
    side is drawn between them (its largest is kept). ``FixShapeResize``
    gives ``(width, height)``; a ``scale_factor`` without a scale
    multiplies the incoming sizes.
    """
    kind = resize.get('type')
    if kind == 'FixShapeResize':
        return [(float(resize['width']), float(resize['height']))]
    found: List[Size] = []
    for key in ('scale', 'scales', 'img_scale'):
        value = resize.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)) and value and \
                isinstance(value[0], (list, tuple)):
            pairs = [_pair(v) for v in value]
            if kind == 'RandomResize':  # each side between the two scales
                pairs = [(max(p[0] for p in pairs), max(p[1] for p in pairs))]
            found += pairs
        else:
            ratio = max(resize.get('ratio_range') or (1.0, ))
            w, h = _pair(value)
            found.append((w * ratio, h * ratio))
    if not found:
        factor = resize.get('scale_factor')
        if factor is None:
            raise ValueError(
                f'Cannot tell the image size after {kind} {dict(resize)}: '
                'it has no scale, scales, width/height or scale_factor; '
                'give --image-size H W.')
        fw, fh = _pair(factor)
        return [(w * fw, h * fh) for w, h in sizes]
    if resize.get('keep_ratio', False):
        found = [o for w, h in found
                 for o in ((max(w, h), min(w, h)), (min(w, h), max(w, h)))]
    return found


def _branches(t: dict) -> List[List[Any]]:
    """The transform lists of a wrapper's ``transforms`` or ``policies``."""
    out = []
    for key in ('transforms', 'policies'):
        value = t.get(key)
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, (list, tuple)):
            continue
        if all(isinstance(v, dict) for v in value):
            # RandomChoice: each transform is a branch; RandomApply and
            # Compose: the list is one branch
            out += [[v] for v in value] if t.get('type') == 'RandomChoice' \
                else [list(value)]
        else:
            out += [list(v) if isinstance(v, (list, tuple)) else [v]
                    for v in value]
    return out


def _walk(transforms: Sequence[Any], sizes: List[Size]) -> List[Size]:
    """The possible largest ``(w, h)`` after ``transforms`` in order, from
    ``sizes`` before them: a resize sets them, an absolute ``RandomCrop``
    caps them, a ``Pad`` raises them (to its size, its size divisor, or a
    square), ``RandomChoice`` / ``AutoAugment`` give the union of their
    branches, and ``RandomApply`` (or any other wrapper) the union of its
    branch and of the sizes it may leave as they are."""
    for t in transforms:
        if not isinstance(t, dict):
            continue
        kind = t.get('type')
        if kind in RESIZES:
            sizes = _resized(t, sizes)
        elif kind in ('RandomChoice', 'AutoAugment'):
            sizes = [size for branch in _branches(t)
                     for size in _walk(branch, sizes)]
        elif _branches(t):  # RandomApply, RandAugment, Compose...
            sizes = sizes + [size for branch in _branches(t)
                             for size in _walk(branch, sizes)]
        elif kind == 'RandomCrop' and t.get('crop_type', 'absolute') in (
                'absolute', 'absolute_range'):
            crop = t['crop_size']  # (w, h); a range: both sides at most [1]
            cw, ch = (crop[1], crop[1]) \
                if t.get('crop_type') == 'absolute_range' else crop
            sizes = [(min(w, cw), min(h, ch)) for w, h in sizes]
        elif kind == 'Pad':
            if t.get('size') is not None:
                pw, ph = _pair(t['size'])  # (w, h)
                sizes = [(max(w, pw), max(h, ph)) for w, h in sizes] or \
                    [(pw, ph)]
            elif t.get('size_divisor'):
                d = float(t['size_divisor'])
                sizes = [(-(-w // d) * d, -(-h // d) * d) for w, h in sizes]
            if t.get('pad_to_square'):
                sizes = [(max(w, h), max(w, h)) for w, h in sizes]
    return sizes


def _pipelines(node: Any) -> List[Sequence[Any]]:
    """The outermost ``pipeline`` lists of a data loader config (a mixing
    dataset's own pipeline, not that of the dataset it wraps)."""
    if isinstance(node, dict):
        if isinstance(node.get('pipeline'), (list, tuple)):
            return [node['pipeline']]
        return [p for key in ('dataset', 'datasets')
                for p in _pipelines(node.get(key))]
    if isinstance(node, (list, tuple)):
        return [p for value in node for p in _pipelines(value)]
    return []


def training_image_size(cfg: Config) -> Tuple[int, int]:
    """``(H, W)`` of the largest image the training pipeline gives: its
    transforms followed in order (:func:`_walk`: the last resize of each
    branch, capped by absolute crops, raised by pads), the scale read as
    mmcv's ``(w, h)`` (``(1333, 800)`` → 800 × 1333; with ``keep_ratio``
    the long and the short edge, landscape where the area ties)."""
    sizes = [size for pipeline in _pipelines(cfg.get('train_dataloader', {}))
             for size in _walk(pipeline, [])]
    if not sizes:
        raise ValueError('The training pipeline has no Resize with a '
                         '`scale`; give the image size explicitly.')
    # the largest area; of two orientations, the landscape one
    w, h = max(sizes, key=lambda s: (s[0] * s[1], s[0] >= s[1]))
    return int(round(h)), int(round(w))


def training_batch_size(cfg: Config) -> int:
    """Images per training step: ``train_dataloader.batch_size``."""
    return int(cfg.train_dataloader.batch_size)


def random_batch(model: torch.nn.Module,
                 batch_size: int,
                 image_size: Tuple[int, int],
                 num_boxes: int = 8,
                 num_classes: Optional[int] = None,
                 with_mask: Optional[bool] = None) -> Dict[str, Any]:
    """A preprocessed training batch of random images and boxes.

    Args:
        model: The distiller (its data preprocessor and student are used).
        batch_size: Images in the batch.
        image_size: ``(H, W)`` of each image.
        num_boxes: Ground-truth boxes per image.
        num_classes: Label range; ``None``: the student's.
        with_mask: Instance masks too; ``None``: when the student has a
            mask head.

    Returns:
        dict: ``inputs`` and ``data_samples`` as the preprocessor gives
        them.
    """
    from mmdet.testing import demo_mm_inputs
    from mmengine.logging import MessageHub

    from ..models.detectors.pair_checks import num_classes_of
    student = model.student
    if num_classes is None:
        num_classes = num_classes_of(student)
    if with_mask is None:
        with_mask = bool(getattr(student, 'with_mask', False))
    hub = MessageHub.get_current_instance()
    # the step and the epoch, as the runner sets them in training: batch
    # augments read the step (YOLOX's BatchSyncRandomResize), heads the
    # epoch (TOOD's assigner switches after its initial epochs)
    for key in ('iter', 'epoch'):
        if hub.get_info(key) is None:
            hub.update_info(key, 0)
    h, w = image_size
    packed = demo_mm_inputs(
        batch_size=batch_size,
        image_shapes=[(3, h, w)] * batch_size,
        num_items=[num_boxes] * batch_size,
        num_classes=num_classes,
        with_mask=with_mask)
    return model.data_preprocessor(packed, True)


__all__ = [
    'without_pretrained', 'random_weights_config', 'training_image_size',
    'training_batch_size', 'random_batch'
]
