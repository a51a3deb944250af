"""The check shared by losses that compare student and teacher maps one to
one."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from torch import Tensor


def paired_maps(loss_name: str, student: Sequence[Tensor],
                teacher: Sequence[Tensor],
                unit: str = 'level') -> List[Tuple[Tensor, Tensor]]:
    """``[(S_l, T_l), ...]`` after checking that both sides hold the same
    non-zero number of maps of equal shapes.

    Args:
        loss_name: Named in the errors.
        student, teacher: The maps, e.g. neck levels (B, C, H, W).
        unit: What one map is called in the errors (``'level'``, ``'map'``).

    Raises:
        ValueError: naming the loss, the map and both shapes.
    """
    if len(student) != len(teacher) or not student:
        raise ValueError(
            f'{loss_name} needs the same non-zero number of {unit}s, got '
            f'{len(student)} student and {len(teacher)} teacher {unit}s.')
    noun = 'feature ' if unit == 'level' else ''
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape != t.shape:
            raise ValueError(
                f'{unit.capitalize()} {i}: student {noun}{tuple(s.shape)} and '
                f'teacher {noun}{tuple(t.shape)} differ; adapt the student '
                'channels (adapter) and use the same strides.')
    return list(zip(student, teacher))
