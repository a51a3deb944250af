"""The base class of distillation methods, the parts a Distiller composes."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmdet.structures import SampleList
from mmdet.utils import OptMultiConfig
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice
from ..capture import DenseHeadOutputs, DistillRecord
from ..capture.record_part import record_parts as part_objects
from ..detectors.pair_checks import match_levels
from .pair_requirement import SAME_PRIOR_LAYOUT, PairRequirement, for_role

#: how feature methods pair student and teacher neck levels
LEVEL_MATCHINGS = ('stride', 'index')


def checked_level_matching(value: str) -> str:
    """``value`` if it is one of :data:`LEVEL_MATCHINGS`, else a clear
    error (the feature methods' ``level_matching`` option)."""
    return checked_choice('level_matching', value, LEVEL_MATCHINGS)

#: What a method's name may look like (it becomes part of loss names).
METHOD_NAME = re.compile(r'^[a-z][a-z0-9]*$')


class DistillMethod(BaseModule):
    """One distillation method: which parts of a step it reads, the modules
    it trains (adapters, projectors) and its loss terms.

    A :class:`~sea_kd.models.distillers.Distiller` composes one or more
    methods around one frozen teacher and one student. Per training step it
    runs the teacher once and the student once for all of them, recording
    the union of the parts they ask for, and adds each method's terms as
    ``loss_<name>_<term>``. The hooks, in the order the distiller calls
    them:

    0. :meth:`check_pair` (build time, before the method is built): what
       the method needs of the pair (:meth:`requirements`); the same
       needs answer :meth:`pair_refusal`.
    1. :meth:`setup` (build time, after both detectors are built and the
       method is bound to them): pair checks, modules built against the
       pair's channels, and the record parts to compute
       (:attr:`record_parts`, :attr:`teacher_record_parts`,
       :attr:`student_taps`, :attr:`teacher_taps`).
    2. :meth:`init_student` (in ``init_weights``, after the student's own
       initialisation and before ``student_ckpt`` is loaded).
    3. :meth:`prepare_student_samples` (each step, after the teacher's
       backbone, neck and dense head, before the student).
    4. :meth:`teacher_after_student` (each step, after the student's loss:
       teacher work that depends on the student's outputs); what it returns
       is kept in ``record.method_outputs[name]``.
    5. :meth:`forward` (each step): ``{term: scalar loss}``, in float32
       with autocast off.

    The teacher and the student are reachable as :attr:`teacher` and
    :attr:`student` but are not submodules of the method (the distiller
    owns the student; the teacher is outside every module tree).

    Args:
        name: Prefix of the loss names, ``loss_<name>_<term>``; lower-case
            letters and digits. ``None``: :attr:`default_name`. Two methods
            of one kind in a distiller get ``<name>``, ``<name>2``, ...
        init_cfg: Initialisation of the method's modules.
    """

    #: Loss-name prefix when the config gives none.
    default_name: str = 'kd'
    #: The name users know the method by (``'FI'``, ``'G-DetKD'``), for
    #: the hint of a refused build; ``None``: not offered there (a
    #: pipeline picked by another class, or a method that needs
    #: options to apply, like :class:`AttentionTransfer`'s taps).
    display_name: Optional[str] = None
    #: Record parts of the student the method reads (``RECORD_PARTS``).
    record_parts: Tuple[str, ...] = ('neck', )
    #: Parts the teacher computes, when they differ from
    #: :attr:`record_parts`; ``None``: the same parts.
    teacher_record_parts: Optional[Tuple[str, ...]] = None
    #: Whether teacher and student must share the dense prior layout.
    requires_same_dense_layout: bool = False
    #: What the method needs of a pair beyond its record parts and prior
    #: layout, checked in order (:meth:`requirements`).
    pair_requirements: Tuple[PairRequirement, ...] = ()
    #: Module paths (``'backbone.layer2'``) whose outputs the method reads
    #: from ``record.student_taps`` / ``record.teacher_taps``.
    student_taps: Tuple[str, ...] = ()
    teacher_taps: Tuple[str, ...] = ()

    def __init__(self,
                 name: Optional[str] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = self.default_name if name is None else name
        if not isinstance(name, str) or not METHOD_NAME.match(name):
            raise ValueError(
                f'A method name becomes part of the loss names '
                f'(loss_<name>_<term>) and must be lower-case letters and '
                f'digits starting with a letter, got {name!r}.')
        self.name = name

    # ------------------------------------------------------------ the pair
    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Attach the pair, not as submodules; the distiller then checks
        the declared parts and calls :meth:`setup`."""
        object.__setattr__(self, '_student', student)
        object.__setattr__(self, '_teacher', teacher)

    @classmethod
    def for_pair(cls, student: nn.Module, teacher: nn.Module,
                 cfg: dict) -> Tuple[type, dict]:
        """The class to build for this pair and its arguments; a method
        with one pipeline per kind of pair (:class:`GDetKD`) picks here."""
        return cls, cfg

    @classmethod
    def requirements(cls) -> List[PairRequirement]:
        """Every need of the method, in order: the student's record
        parts, the teacher's, the shared prior layout
        (:attr:`requires_same_dense_layout`), then
        :attr:`pair_requirements`."""
        needs = []
        teacher_parts = cls.record_parts if cls.teacher_record_parts is None \
            else cls.teacher_record_parts
        for parts, role in ((cls.record_parts, 'student'),
                            (teacher_parts, 'teacher')):
            for part in part_objects(parts):
                if part.requirement:
                    needs.append(PairRequirement(
                        part.requirement,
                        for_role(part.check, role)))
        if cls.requires_same_dense_layout:
            needs.append(SAME_PRIOR_LAYOUT)
        return needs + list(cls.pair_requirements)

    @classmethod
    def check_pair(cls, student: nn.Module, teacher: nn.Module) -> None:
        """Raise the full error of the first unmet need of the pair."""
        for need in cls.requirements():
            need.check(student, teacher)

    @classmethod
    def pair_refusal(cls, student: nn.Module,
                     teacher: nn.Module) -> Optional[str]:
        """Why the method does not distil the pair, short (the reason of
        its first unmet need, also of the pipeline :meth:`for_pair`
        picks); ``None`` when it does. Options the method needs for the
        pair (an adapter between widths) are not part of the answer."""
        for need in cls.requirements():
            if not need.met_by(student, teacher):
                return need.reason
        chosen, _ = cls.for_pair(student, teacher, {})
        return None if chosen is cls else chosen.pair_refusal(student,
                                                              teacher)

    @property
    def student(self) -> nn.Module:
        """The student detector (owned by the distiller)."""
        return self._student

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector."""
        return self._teacher

    @property
    def teacher_parts(self) -> Tuple[str, ...]:
        """Record parts the teacher computes for this method."""
        if self.teacher_record_parts is None:
            return tuple(self.record_parts)
        return tuple(self.teacher_record_parts)

    @property
    def makes_pseudo_labels(self) -> bool:
        """Whether :meth:`prepare_student_samples` gives images flagged
        ``metainfo['unlabeled']`` their targets."""
        return False

    def pair_levels(self, levels: Optional[Sequence[int]],
                    by: str) -> List[Tuple[int, int]]:
        """``[(student level, teacher level)]`` for the neck levels
        ``levels`` (``None``: all), paired by ``'stride'`` or ``'index'``
        (:func:`match_levels`); student levels without a teacher level of
        their stride are logged and left out."""
        pairs, unmatched = match_levels(self.student, self.teacher, levels,
                                        by=by)
        if unmatched:
            MMLogger.get_current_instance().warning(
                f'{type(self).__name__}: student neck levels {unmatched} '
                'have no teacher level of the same stride and are not '
                f'distilled (pairs, student -> teacher: {pairs}).')
        return pairs

    # ------------------------------------------------------------ the hooks
    def setup(self) -> None:
        """Check the pair and build the method's modules against it."""

    def init_student(self) -> None:
        """Change the student's initial weights before ``student_ckpt``."""

    def prepare_student_samples(
            self, batch_data_samples: SampleList,
            teacher_dense: Optional[DenseHeadOutputs]) -> SampleList:
        """Targets the student trains on; by default the batch's own."""
        return batch_data_samples

    def teacher_after_student(self, record: DistillRecord) -> Any:
        """Teacher work that needs the student's outputs of the step."""
        return None

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        """The method's loss terms of one step, ``{term: scalar}``."""
        raise NotImplementedError

    def own_passes(self, record: DistillRecord) -> Optional[List[Tensor]]:
        """The network passes the method adds to a step by its design, run
        on ``record``: their outputs, whose forward and backward
        ``tools/benchmark.py`` times as the method's part of its limit
        (``c / (a + b + e)``), apart from its loss arithmetic.

        ``None`` (the default): the method names no such pass, and its
        limit is taken as the student's step (a) plus the teacher's
        forward (b). Passes not named here count as the method's overhead
        (today MGD's generator, two convolutions per level, and G-DetKD's
        teacher R-CNN branch on the student's regions).
        """
        return None
