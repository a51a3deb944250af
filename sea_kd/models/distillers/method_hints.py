"""Which methods can distil a pair: the hint every refused build ends with,
from the methods' own answers (:meth:`DistillMethod.pair_refusal`)."""
from __future__ import annotations

from typing import List, Type

from mmdet.registry import MODELS
from torch import nn

from ..methods import DistillMethod


def offered_methods() -> List[Type[DistillMethod]]:
    """The registered methods offered by name (their own
    ``display_name``), in registration order."""
    return [cls for cls in MODELS.module_dict.values()
            if isinstance(cls, type) and issubclass(cls, DistillMethod)
            and vars(cls).get('display_name')]


def methods_for_pair(student: nn.Module, teacher: nn.Module) -> List[str]:
    """The names of the methods that distil this pair."""
    return [cls.display_name for cls in offered_methods()
            if cls.pair_refusal(student, teacher) is None]


def methods_hint(student: nn.Module, teacher: nn.Module) -> str:
    """One sentence naming the methods that distil this pair."""
    names = methods_for_pair(student, teacher)
    if not names:
        return ('No method of sea_kd distils this teacher into this '
                'student yet (docs/compatibility.md).')
    return (f'Methods that distil this pair: {", ".join(names)} '
            '(docs/compatibility.md).')
