"""Which methods can distil a pair: the hint every refused build ends with."""
from __future__ import annotations

from typing import List

from torch import nn

from ..capture.query_outputs import uses_sigmoid_classes
from ..detectors import (dense_head_view, is_dense_detector,
                         is_query_detector, is_two_stage_detector)
from ..detectors.anchor_head_view import RetinaHeadView
from ..utils.teacher_head_tail import is_tower_head
from ..detectors.pair_checks import check_same_dense_layout, match_levels

#: the methods that read only the neck features (and the ground truth);
#: each pairs neck levels by stride (levels of other strides are left out)
NECK_METHODS = ('FI', 'PKD', 'CWD', 'MGD', 'FGD', 'SEA')


def _refuses(check, *args) -> bool:
    try:
        check(*args)
    except (TypeError, ValueError):
        return True
    return False


def _dense_head(detector: nn.Module):
    """The one-stage detector's head when its targets are read, else
    ``None``."""
    head = getattr(detector, 'bbox_head', None)
    if not is_dense_detector(detector) or \
            dense_head_view(head) is None:
        return None
    return head


def methods_for_pair(student: nn.Module, teacher: nn.Module) -> List[str]:
    """The methods of docs/compatibility.md that distil this pair, by the
    pair's kinds: a conservative list (every name in it works)."""
    names: List[str] = []
    if not _refuses(match_levels, student, teacher):
        names += NECK_METHODS
    s_head, t_head = _dense_head(student), _dense_head(teacher)
    if s_head is not None and t_head is not None and \
            type(s_head) is type(t_head) and \
            not _refuses(check_same_dense_layout, student, teacher):
        names += ['ADL']
        if dense_head_view(s_head).predicts_distributions:
            names.append('LD')
        else:
            names.append('TBD')
        if is_tower_head(s_head):
            names.append('CrossKD')
    if is_query_detector(student) and is_query_detector(teacher) and \
            uses_sigmoid_classes(student) == uses_sigmoid_classes(teacher):
        names.append('HMLD')
    if is_two_stage_detector(teacher) and (
            is_two_stage_detector(student)
            or type(dense_head_view(getattr(student, 'bbox_head', None)))
            is RetinaHeadView):
        names.append('G-DetKD')
    return names


def methods_hint(student: nn.Module, teacher: nn.Module) -> str:
    """One sentence naming the methods that distil this pair."""
    names = methods_for_pair(student, teacher)
    if not names:
        return ('No method of sea_kd distils this teacher into this '
                'student yet (docs/compatibility.md).')
    return (f'Methods that distil this pair: {", ".join(names)} '
            '(docs/compatibility.md).')
