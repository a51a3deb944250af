"""Record parts: the pieces of a :class:`DistillRecord` a method may read.

A part is a registered object that says what it needs of a detector
(:meth:`RecordPart.check`, at build), which calls of the student's own
loss it taps and how it fills the student's side
(:meth:`RecordPart.tap_student`), and which teacher modules it runs to
fill the teacher's side (:attr:`RecordPart.teacher_modules`,
:meth:`RecordPart.run_teacher`). The distiller asks the parts the methods
name; it knows no part by name. The built-in parts are in
:mod:`.record_parts`; a new part is a subclass registered with
:func:`register_record_part`.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Callable, Iterable, List, Tuple

from mmengine.registry import Registry
from torch import Tensor, nn

from .record import DistillRecord

#: The record parts by name, in the order they fill a record: the neck
#: first (the teacher's other parts read its features).
RECORD_PARTS = Registry('record part')

#: What fills a part's student side after the student's loss ran:
#: ``fill(record, inputs)``.
StudentFill = Callable[[DistillRecord, Tensor], None]


class RecordPart:
    """One part of the record of a distillation step.

    Class attributes:
        name: The part's name, as methods list it in ``record_parts``.
        requirement: What a detector must be to give the part, short
            (the reason a method reading it refuses a pair, e.g. ``'reads
            dense-head outputs'``); empty when every detector gives it.
        teacher_modules: Top-level modules of the teacher the part runs
            (a method may tap the teacher only there).
        teacher_after_student: Whether the teacher's side runs after the
            student's loss, because it reads the student's side (the
            student's sampled regions); otherwise it runs before, while
            little memory is held, and the methods may make the student's
            pseudo labels from it.
    """
    name: str = ''
    requirement: str = ''
    teacher_modules: Tuple[str, ...] = ()
    teacher_after_student: bool = False

    def check(self, detector: nn.Module, role: str) -> None:
        """Raise if ``detector`` cannot provide the part.

        Args:
            detector: The teacher or the student.
            role: ``'teacher'`` or ``'student'``, for the message.
        """

    def tap_student(self, student: nn.Module,
                    stack: ExitStack) -> StudentFill:
        """Enter the taps the part needs on the student's loss into
        ``stack``; return what fills the student's side afterwards."""
        return lambda record, inputs: None

    def run_teacher(self, teacher: nn.Module, inputs: Tensor,
                    record: DistillRecord) -> None:
        """Fill the teacher's side of ``record`` (under ``no_grad``).

        Args:
            teacher: The frozen teacher, in eval mode.
            inputs: The batch as the teacher sees it.
            record: The step's record; ``teacher_neck`` is set for every
                part but the neck, and the student's side for parts that
                run after the student.
        """


def register_record_part(cls: type) -> type:
    """Register a :class:`RecordPart` subclass under its ``name``."""
    if not cls.name:
        raise ValueError(f'{cls.__name__} has no `name`.')
    RECORD_PARTS.register_module(name=cls.name, module=cls)
    return cls


def record_part_names() -> Tuple[str, ...]:
    """Every registered part's name, in record order."""
    return tuple(RECORD_PARTS.module_dict)


def ordered_parts(names: Iterable[str]) -> Tuple[str, ...]:
    """The distinct ``names`` in record order; unknown names raise."""
    wanted = set(names)
    known = record_part_names()
    unknown = wanted - set(known)
    if unknown:
        raise ValueError(f'Unknown record parts {sorted(unknown)}; choose '
                         f'from {known}.')
    return tuple(p for p in known if p in wanted)


def record_parts(names: Iterable[str]) -> List[RecordPart]:
    """The part objects of ``names``, in record order."""
    return [RECORD_PARTS.get(name)() for name in ordered_parts(names)]


def check_parts(detector: nn.Module, parts: Iterable[str],
                role: str) -> None:
    """Raise if ``detector`` cannot provide the requested record parts."""
    for part in record_parts(parts):
        part.check(detector, role)


def teacher_modules(parts: Iterable[str]) -> Tuple[str, ...]:
    """The teacher's top-level modules a step runs for ``parts`` (the
    neck's always: every part reads its features)."""
    names = [m for part in record_parts(('neck', *parts))
             for m in part.teacher_modules]
    return tuple(dict.fromkeys(names))


def teacher_module_hint() -> str:
    """Which part runs which teacher modules, for messages."""
    return ', '.join(
        f"'{name}' for {'/'.join(cls.teacher_modules)}"
        for name, cls in RECORD_PARTS.module_dict.items()
        if name != 'neck' and cls.teacher_modules)
