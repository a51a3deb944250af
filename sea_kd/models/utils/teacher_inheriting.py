"""The inheriting strategy: the student starts from the teacher's weights
outside the backbone."""
from __future__ import annotations

from typing import List

from mmengine.logging import MMLogger
from torch import nn

from .head_transfer import copy_matching_state


def inherit_teacher_weights(student: nn.Module,
                            teacher: nn.Module) -> List[str]:
    """Copy the teacher's neck and heads into the student where names and
    shapes agree; the backbone and the data preprocessor keep their own.

    This is the "inheriting strategy" of the FGD and MGD authors
    (``init_student=True`` in yzd-v/FGD's and yzd-v/MGD's
    ``detection_distiller.py``): every teacher weight outside the backbone
    goes into the student. What was copied and what kept (another shape,
    or absent from the teacher) is logged.

    Returns:
        list: The copied entries, ``'<part>.<key>'``.
    """
    copied, skipped = [], []
    for name, part in student.named_children():
        source = getattr(teacher, name, None)
        if name in ('backbone', 'data_preprocessor') or \
                not isinstance(source, nn.Module):
            continue
        c, s = copy_matching_state(source, part)
        copied += [f'{name}.{k}' for k in c]
        skipped += [f'{name}.{k}' for k in s]
    MMLogger.get_current_instance().info(
        f'Inheriting strategy: copied {len(copied)} entries of the '
        f"teacher's neck and heads into the student; kept {len(skipped)} of "
        f'another shape or absent from the teacher '
        f'({", ".join(skipped) or "none"}).')
    return copied
