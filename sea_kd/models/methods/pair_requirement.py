"""What a method needs of a teacher-student pair.

A method lists its needs as :class:`PairRequirement` objects (its record
parts' needs and the prior-layout check come first, see
:meth:`DistillMethod.requirements`). The same list answers two questions:
whether the method distils a pair, with a short reason when it does not
(:meth:`DistillMethod.pair_refusal`, the cells of
``docs/compatibility.md`` and the hint of every refused build), and, at
build, the full error of the first unmet need
(:meth:`DistillMethod.check_pair`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from torch import nn

from ..detectors.pair_checks import (check_same_dense_layout,
                                     check_sigmoid_heads, match_levels)

#: ``check(student, teacher)`` raises ``TypeError`` or ``ValueError`` (or
#: ``NotImplementedError``: a head sea_kd has no view of) with the full
#: message (the problem and the fix) when the need is unmet.
PairCheck = Callable[[nn.Module, nn.Module], None]


class PairRequirement(NamedTuple):
    """One need of a method.

    Attributes:
        reason: Why a pair that fails it is refused, short (a cell of
            ``docs/compatibility.md`` reads ``no: <reason>``).
        check: Raises with the full message when the pair fails it.
    """
    reason: str
    check: PairCheck

    def met_by(self, student: nn.Module, teacher: nn.Module) -> bool:
        """Whether the pair meets the need."""
        try:
            self.check(student, teacher)
        except (TypeError, ValueError, NotImplementedError):
            # NotImplementedError: a dense head without a view
            return False
        return True


def for_both(check: Callable[[nn.Module, str], None]) -> PairCheck:
    """A pair check that runs ``check(detector, role)`` on the student and
    then on the teacher."""
    def both(student: nn.Module, teacher: nn.Module) -> None:
        check(student, 'student')
        check(teacher, 'teacher')
    return both


def for_role(check: Callable[[nn.Module, str], None],
             role: str) -> PairCheck:
    """A pair check that runs ``check(detector, role)`` on one side,
    ``'student'`` or ``'teacher'``."""
    def one(student: nn.Module, teacher: nn.Module) -> None:
        check(student if role == 'student' else teacher, role)
    return one


#: The feature methods' need: neck levels that pair by stride (by index
#: when either detector has no prior generator).
NECK_LEVELS = PairRequirement('needs necks whose levels pair',
                              lambda s, t: match_levels(s, t))

#: The dense-logit methods' need: position-by-position predictions.
SAME_PRIOR_LAYOUT = PairRequirement('needs the same prior layout',
                                    check_same_dense_layout)


def sigmoid_heads(method: str) -> PairRequirement:
    """The need of a method (``'ADL'``) that distils sigmoid class
    logits: both dense heads classify with sigmoids."""
    return PairRequirement(
        'needs sigmoid classifiers',
        lambda s, t: check_sigmoid_heads(s, t, method))
