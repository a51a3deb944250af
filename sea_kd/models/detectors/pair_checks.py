"""Build-time compatibility checks between a teacher and a student."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from torch import nn

from .detector_kind import is_backbone_teacher
from .strides import prior_strides_of

#: Class names shown in full in a message; longer lists are cut.
_SHOWN_CLASSES = 20


def num_classes_of(detector: nn.Module) -> int:
    """Number of object classes a detector predicts."""
    for path in ('bbox_head', 'roi_head.bbox_head'):
        module: Any = detector
        for name in path.split('.'):
            module = getattr(module, name, None)
        if isinstance(module, nn.ModuleList) and len(module):
            module = module[-1]  # Cascade R-CNN: one bbox head per stage
        if module is not None and hasattr(module, 'num_classes'):
            return int(module.num_classes)
    raise TypeError(f'Cannot find `num_classes` on a {type(detector).__name__}'
                    ' (looked at bbox_head and roi_head.bbox_head).')


def dataset_class_problems(model: nn.Module,
                           classes: Sequence[str]) -> List[Tuple[int, str]]:
    """Heads whose class count is not the data set's.

    A distiller's teacher and student are both checked; any other model is
    checked as one detector. A head with fewer classes than the data set
    trains the extra classes as background; one with more never sees them.

    Args:
        model: A distiller or a detector (unwrapped).
        classes: The class names of the training set (empty: no check).

    Returns:
        ``(num_classes, message)`` per mismatching head; the message names
        the head, both counts, the classes and the fix.
    """
    if not classes:
        return []
    if hasattr(model, 'student') and hasattr(model, 'teacher'):
        roles = [('teacher', model.teacher), ('student', model.student)]
    else:
        roles = [('model', model)]
    problems = []
    for role, detector in roles:
        if is_backbone_teacher(detector):
            continue
        num = num_classes_of(detector)
        if num != len(classes):
            problems.append((num, (
                f'The {role} head predicts {num} classes but the training '
                f'set has {len(classes)} ({", ".join(classes)}); set '
                f'num_classes={len(classes)} in the {role} config (and '
                'retrain a teacher trained on another label set).')))
    return problems


def checkpoint_classes(meta: dict) -> Optional[List[str]]:
    """The class names a checkpoint's model was trained on.

    Args:
        meta: The checkpoint's ``meta``.

    Returns:
        ``meta['dataset_meta']['classes']`` (mmengine's Runner saves the
        training set's ``metainfo`` there) or mmdet 2.x's
        ``meta['CLASSES']``; ``None`` when the checkpoint records neither.
    """
    dataset_meta = meta.get('dataset_meta')
    classes = dataset_meta.get('classes') if isinstance(
        dataset_meta, dict) else None
    if classes is None:
        classes = meta.get('CLASSES')
    return None if classes is None else [str(c) for c in classes]


def teacher_checkpoint_classes(model: nn.Module) -> Optional[List[str]]:
    """The classes a distiller's teacher checkpoint was trained on, as the
    distiller read them when it loaded the checkpoint.

    Args:
        model: A distiller (unwrapped); any other model gives ``None``.

    Returns:
        The class names (:func:`checkpoint_classes`), or ``None`` when the
        model is no distiller or its checkpoint records none.
    """
    return getattr(model, 'teacher_ckpt_classes', None)


def _class_names(classes: Sequence[str]) -> str:
    """``classes`` joined by commas, cut after :data:`_SHOWN_CLASSES`."""
    more = len(classes) - _SHOWN_CLASSES
    return ', '.join(classes[:_SHOWN_CLASSES]) + (
        f', ... (+{more} more)' if more > 0 else '')


def class_identity_problem(trained: Optional[Sequence[str]],
                           classes: Sequence[str],
                           checkpoint: str) -> Optional[str]:
    """Whether a teacher checkpoint was trained on the training set's classes,
    name for name and in the same order.

    A teacher's label ``k`` means the ``k``-th class it was trained on; with
    the same number of classes in another order, or other classes, the
    class-count check passes and the student is taught wrong classes.

    Args:
        trained: The checkpoint's classes (:func:`checkpoint_classes`);
            ``None``: unknown, nothing is checked.
        classes: The training set's ``metainfo['classes']`` (empty: no
            check).
        checkpoint: The checkpoint file, for the message.

    Returns:
        ``None`` when the lists are equal (or either is unknown), otherwise
        a message naming the file, the first difference, both lists and the
        fix.
    """
    if trained is None or not classes:
        return None
    trained, classes = list(trained), list(classes)
    if trained == classes:
        return None
    i = next((i for i, (a, b) in enumerate(zip(trained, classes)) if a != b),
             min(len(trained), len(classes)))

    def at(names: List[str]) -> str:
        return repr(names[i]) if i < len(names) else \
            f'none (it has {len(names)} classes)'

    lines = [
        f'`teacher_ckpt` file `{checkpoint}` was trained on other classes '
        'than the training set (as its meta records them): the '
        "teacher's label k is the k-th class it was trained on, so the "
        'student would be taught wrong classes.',
        f'  first difference, class index {i}: checkpoint {at(trained)}, '
        f'training set {at(classes)}',
        f'  checkpoint ({len(trained)}): {_class_names(trained)}',
        f'  training set ({len(classes)}): {_class_names(classes)}']
    if sorted(trained) == sorted(classes):
        lines.append(
            '  Same names in another order. Fix: list the classes in the '
            "checkpoint's order in the data sets' metainfo (training and "
            f'validation): metainfo=dict(classes={tuple(trained)!r}).')
    else:
        only_ckpt = [c for c in trained if c not in classes]
        only_data = [c for c in classes if c not in trained]
        lines.append(
            f'  only in the checkpoint: {_class_names(only_ckpt) or "-"}; '
            f'only in the training set: {_class_names(only_data) or "-"}. '
            'Fix: train (or fine-tune) the teacher on this data set\'s '
            'classes, or give the data sets the teacher\'s classes in its '
            'order (metainfo=dict(classes=(...))).')
    return '\n'.join(lines)


def neck_channels_of(detector: nn.Module) -> List[int]:
    """Output channels of each neck level (FPN-style necks); a backbone
    teacher's feature maps count as its neck levels."""
    if is_backbone_teacher(detector):
        return list(detector.feature_channels)
    neck = getattr(detector, 'neck', None)
    convs = getattr(neck, 'convs', None)
    if neck is not None and not hasattr(neck, 'out_channels') and \
            isinstance(convs, nn.ModuleList):
        # ChannelMapper (DETR family): one conv per input level, then the
        # extra levels' convs
        extra = getattr(neck, 'extra_convs', None) or []
        return [m.conv.out_channels for m in [*convs, *extra]]
    if neck is None or not hasattr(neck, 'out_channels'):
        raise TypeError(
            f'The {type(detector).__name__} has no neck with `out_channels`; '
            'feature distillation needs an FPN-style neck.')
    channels = neck.out_channels
    if isinstance(channels, int):
        # FPN-style necks say num_outs; PAFPNs (CSPNeXt, YOLOX) give one
        # level per input level
        num_outs = getattr(neck, 'num_outs', None) or \
            len(getattr(neck, 'in_channels', None) or [None])
        return [channels] * num_outs
    return list(channels)


def dense_layout_of(detector: nn.Module,
                    head_name: str = 'bbox_head') -> Optional[Dict[str, Any]]:
    """Prior layout of a dense head: strides, priors per location...

    Args:
        detector: The detector.
        head_name: ``'bbox_head'`` (one-stage) or ``'rpn_head'``.

    Returns ``None`` for detectors without such a head with a prior
    generator.
    """
    head = getattr(detector, head_name, None)
    generator = getattr(head, 'prior_generator', None)
    if generator is None:
        return None
    layout: Dict[str, Any] = dict(
        head=type(head).__name__,
        strides=[tuple(s) if isinstance(s, (tuple, list)) else (s, s)
                 for s in generator.strides],
        priors_per_location=list(generator.num_base_priors),
        num_classes=head.num_classes)
    for attr in ('ratios', 'scales', 'octave_base_scale',
                 'scales_per_octave', 'center_offset', 'offset'):
        value = getattr(generator, attr, None)
        if value is not None:
            layout[attr] = value.tolist() if hasattr(value, 'tolist') \
                else value
    return layout


def check_same_classes(student: nn.Module, teacher: nn.Module) -> None:
    """Raise if teacher and student predict different numbers of classes
    (a backbone teacher predicts none: nothing to check)."""
    if is_backbone_teacher(teacher):
        return
    s, t = num_classes_of(student), num_classes_of(teacher)
    if s != t:
        raise ValueError(
            f'Teacher and student disagree on the number of classes: student '
            f'has num_classes={s}, teacher num_classes={t}. Both must be '
            'trained on the same label set; set num_classes in both configs '
            '(and retrain the teacher if its checkpoint has another count).')


def check_same_levels(student: nn.Module, teacher: nn.Module) -> None:
    """Raise if the two necks give a different number of levels."""
    s, t = neck_channels_of(student), neck_channels_of(teacher)
    if len(s) != len(t):
        raise ValueError(
            f'Teacher and student necks give different numbers of levels '
            f'(student {len(s)}, teacher {len(t)}); set the same `num_outs` '
            'and start level in both necks.')


def check_same_strides(student: nn.Module,
                       teacher: nn.Module,
                       levels: Optional[Sequence[int]] = None) -> None:
    """Raise if neck levels compared one to one have different strides.

    For methods that compare level ``l`` of the student with level ``l`` of
    the teacher (their feature maps must have the same size). The strides
    are those of each model's dense prior generator (``bbox_head`` or
    ``rpn_head``), which follow its neck; nothing is checked when either
    model has none.

    Args:
        student: The student detector.
        teacher: The teacher detector.
        levels: Indices of the compared levels; ``None`` for all.
    """
    s, t = prior_strides_of(student), prior_strides_of(teacher)
    if s is None or t is None or len(s) != len(t):
        return
    levels = range(len(s)) if levels is None else levels
    diffs = [f'level {i}: student {s[i]}, teacher {t[i]}' for i in levels
             if s[i] != t[i]]
    if diffs:
        raise ValueError(
            'Teacher and student neck levels have different strides, so '
            'their feature maps of one level differ in size:\n  ' +
            '\n  '.join(diffs) + '\nGive both necks the same levels (e.g. '
            'both P3-P7 like RetinaNet, or both P2-P6 like Faster R-CNN: '
            '`start_level`, `num_outs` and the heads\' strides).')


#: What places a prior within its cell: two heads with one prior per
#: location predict for the same cells whatever these are (an FCOS point
#: at the cell's centre, an ATSS anchor at its corner).
_PRIOR_PLACEMENT = ('center_offset', 'offset')
#: What shapes an anchor: compared only where a location has several
#: priors, whose order then means the same anchor shape in both heads.
_ANCHOR_SHAPE = ('ratios', 'scales', 'octave_base_scale',
                 'scales_per_octave')


def check_same_dense_layout(student: nn.Module, teacher: nn.Module) -> None:
    """Raise unless the two dense heads predict for the same positions:
    the same strides and priors per location (and, where a location has
    several priors, the same anchor shapes); name what differs.

    Heads of different families with one prior per location at the same
    strides (FCOS, ATSS, GFL, RTMDet, YOLOX, ...) share a layout: their
    predictions are matched cell by cell.
    """
    s, t = dense_layout_of(student), dense_layout_of(teacher)
    if s is None or t is None:
        who = 'student' if s is None else 'teacher'
        raise TypeError(
            f'This distiller matches teacher and student predictions anchor '
            f'by anchor, but the {who} has no dense head with a prior '
            'generator (use a one-stage detector: RetinaNet, FCOS, ATSS).')
    several = max(s['priors_per_location'] + t['priors_per_location']) > 1
    ignored = {'head', *_PRIOR_PLACEMENT} | \
        (set() if several else set(_ANCHOR_SHAPE))
    diffs = [f'{k}: student {s.get(k)} vs teacher {t.get(k)}'
             for k in sorted(set(s) | set(t))
             if k not in ignored and s.get(k) != t.get(k)]
    if diffs:
        raise ValueError(
            'Teacher and student dense heads have different anchor layouts, '
            'so their predictions cannot be matched anchor by anchor:\n  ' +
            '\n  '.join(diffs) + '\nGive both the same prior generator '
            '(strides, anchors per location, scales, ratios).')


def check_sigmoid_heads(student: nn.Module, teacher: nn.Module,
                        method: str) -> None:
    """Raise if either dense head does not use a sigmoid classifier.

    Args:
        student: The student detector (with a ``bbox_head``).
        teacher: The teacher detector (with a ``bbox_head``).
        method: The method's name for the message, e.g. ``'ADL'``.
    """
    for role, detector in (('student', student), ('teacher', teacher)):
        head = detector.bbox_head
        if not getattr(head, 'use_sigmoid_cls', False):
            raise ValueError(
                f'{method} distils sigmoid class logits, but the {role} head '
                f'{type(head).__name__} uses a softmax classifier; set '
                "loss_cls=dict(..., use_sigmoid=True) in both heads.")


def _box_coding(coder) -> tuple:
    """What makes two box coders' deltas comparable."""
    return (type(coder).__name__,
            [float(v) for v in getattr(coder, 'means', ())],
            [float(v) for v in getattr(coder, 'stds', ())])


def check_same_box_coding(student_head: nn.Module,
                          teacher_head: nn.Module) -> None:
    """Raise if two R-CNN bbox heads' deltas cannot be compared directly
    (different box coders or class-specific vs class-agnostic)."""
    diffs = []
    if student_head.reg_class_agnostic != teacher_head.reg_class_agnostic:
        diffs.append(f'reg_class_agnostic: student '
                     f'{student_head.reg_class_agnostic}, teacher '
                     f'{teacher_head.reg_class_agnostic}')
    s, t = _box_coding(student_head.bbox_coder), \
        _box_coding(teacher_head.bbox_coder)
    if s != t:
        diffs.append(f'bbox_coder (type, means, stds): student {s}, '
                     f'teacher {t}')
    if diffs:
        raise ValueError(
            'The R-CNN box deltas of teacher and student are not '
            'comparable:\n  ' + '\n  '.join(diffs) + '\nGive both bbox '
            'heads the same bbox_coder and reg_class_agnostic, or set '
            'loss_reg=None.')


def match_levels(student: nn.Module, teacher: nn.Module,
                 levels: Optional[Sequence[int]] = None,
                 by: str = 'stride'
                 ) -> Tuple[List[Tuple[int, int]], List[int]]:
    """Pair student neck levels with teacher neck levels.

    Args:
        student: The student detector.
        teacher: The teacher detector.
        levels: Student level indices to pair; ``None`` for all.
        by: ``'stride'``: each with the teacher level of its stride (the
            strides of the dense prior generators; by index when either
            model has none, which then needs the same number of levels);
            ``'index'``: level ``i`` with level ``i``, which needs the same
            number of levels and equal strides.

    Returns:
        tuple: ``[(student level, teacher level)]`` and the student levels
        the teacher has no level of the same stride for.
    """
    s_ch, t_ch = neck_channels_of(student), neck_channels_of(teacher)
    levels = list(range(len(s_ch))) if levels is None else list(levels)
    bad = [i for i in levels if not 0 <= i < len(s_ch)]
    if bad:
        raise ValueError(f'levels {levels} out of range for {len(s_ch)} '
                         'neck levels.')
    s, t = prior_strides_of(student), prior_strides_of(teacher)
    if is_backbone_teacher(teacher) and (s is None or len(s) != len(s_ch)):
        raise ValueError(
            'A backbone teacher\'s maps pair with student levels by stride, '
            f'and the {type(student).__name__} student has no prior '
            'generator that tells its levels\' strides (DETR family). '
            'Distil it with DSI and an explicit student_level.')
    if by == 'index' or s is None or t is None or len(s) != len(s_ch) \
            or len(t) != len(t_ch):
        check_same_levels(student, teacher)
        check_same_strides(student, teacher, levels)
        return [(i, i) for i in levels], []
    by_stride = {stride: j for j, stride in enumerate(t)}
    pairs = [(i, by_stride[s[i]]) for i in levels if s[i] in by_stride]
    unmatched = [i for i in levels if s[i] not in by_stride]
    if not pairs:
        raise ValueError(
            f'No student neck level has the stride of a teacher level '
            f'(student strides {[s[i] for i in levels]}, teacher {t}); '
            'feature methods compare maps of one stride.')
    return pairs, unmatched
