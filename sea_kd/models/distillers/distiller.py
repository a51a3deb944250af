"""The distiller: a frozen teacher, a student and the methods that join
them, behind one mmdet detector."""
from __future__ import annotations

import copy
from contextlib import ExitStack
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import Config
from mmengine.model import ModuleDict
from torch import Tensor, nn
from torch.profiler import record_function

from ...utils import load_model_cfg, load_state_dict_strict
from ..balance import build_balance
from ..capture import (DenseHeadOutputs, DistillRecord, ModuleTaps,
                       check_parts, module_at, ordered_parts,
                       run_teacher_parts, student_loss_into,
                       teacher_module_hint, teacher_modules)
from ..detectors.pair_checks import (check_same_classes,
                                     check_same_dense_layout,
                                     checkpoint_classes)
from ..methods import build_method
from ..teachers import is_backbone_teacher
from ..utils.teacher_inheriting import inherit_teacher_weights
from .distill_loss_controls import DistillLossControlsMixin
from .method_hints import methods_hint
from .random_streams import StepStreams, devices_of, random_stream_of_its_own
from .teacher_precision import lower_teacher_precision, teacher_dtype_of
from .teacher_preprocessing import (check_convertible_preprocessing,
                                    convert_to_teacher_inputs)

ModelSpec = Union[str, ConfigType]


#: The forward stages of :meth:`Distiller.loss`, as a profiler names them
#: (``torch.profiler.record_function``; ``tools/benchmark.py --profile``).
STAGE_LABELS = {
    'teacher_before': 'sea_kd.teacher_before_student',
    'student': 'sea_kd.student_forward_and_loss',
    'teacher_after': 'sea_kd.teacher_after_student',
    'methods_teacher': 'sea_kd.methods_teacher_after_student',
    'terms': 'sea_kd.method_terms',
    'balance': 'sea_kd.balance_observe',
    'controls': 'sea_kd.loss_controls',
}


def _check_method_cfgs(methods: Sequence[ConfigType], owner: str) -> None:
    """Check that ``methods`` is a non-empty list of method config dicts.

    Args:
        methods: The distiller's ``methods``.
        owner: The distiller's class name, for the messages.

    Raises:
        TypeError: ``methods`` is not a list or tuple (a single config dict
            or a type name), or one of its entries is not a config dict
            (e.g. the type name ``'FeatureImitation'``).
        ValueError: ``methods`` is empty.
    """
    example = "methods=[dict(type='FeatureImitation')]"
    if not isinstance(methods, (list, tuple)):
        if isinstance(methods, str):
            fix = f'methods=[dict(type={methods!r})]'
        elif isinstance(methods, (dict, Config)):
            fix = f'methods=[dict(type={methods.get("type")!r}, ...)]'
        else:
            fix = example
        raise TypeError(
            f'{owner}\'s `methods` must be a list of method config dicts, '
            f'got the {type(methods).__name__} {methods!r}. Write {fix}.')
    if not methods:
        raise ValueError(
            f'{owner} has no `methods`: it would train the student alone. '
            f'List at least one, e.g. {example}.')
    for index, cfg in enumerate(methods):
        if not isinstance(cfg, (dict, Config)):
            fix = f'dict(type={cfg!r})' if isinstance(cfg, str) \
                else "dict(type='FeatureImitation', ...)"
            raise TypeError(
                f'{owner}\'s `methods[{index}]` is the '
                f'{type(cfg).__name__} {cfg!r}, not a method config dict. '
                f'Write each method as a config dict with its type and '
                f'options: {fix}.')


def _unknown_options_message(kind: str, unknown: dict) -> str:
    """A distiller given options it does not take: most often a method's
    option set on the distiller (the one-method aliases' form)."""
    names = ', '.join(sorted(unknown))
    first = sorted(unknown)[0]
    return (f'{kind} does not take {names}. A method\'s options go in its '
            f"entry of `methods` (methods=[dict(type=..., {first}=...)]); "
            f'from the command line, --cfg-options '
            f'model.methods.0.{first}=... sets the first method\'s.')


@MODELS.register_module()
class Distiller(DistillLossControlsMixin, BaseDetector):
    """A frozen teacher, a student and one or more distillation methods.

    A distiller is an mmdet detector: the Runner trains it, validates it and
    saves it like any other. Per training step it runs the frozen teacher
    once for all methods (backbone, neck and, if a method asks for it, dense
    head before the student; the R-CNN branch after it, on the student's
    sampled RoIs), the student's own ``loss()`` once, recording the union of
    the parts the methods read, and adds every method's terms::

        L = L_student + sum_m sum_k loss_<m>_<k>

    ``predict`` and ``tensor`` modes run the student alone.

    Example::

        model = dict(
            type='Distiller', student=..., teacher=..., teacher_ckpt=...,
            methods=[dict(type='FeatureImitation'),
                     dict(type='ADL', loss_adl=dict(type='ADLoss'))])

    The teacher is kept outside the module tree: it is not in ``state_dict``
    (checkpoints hold the student and the methods' modules, under
    ``methods.<name>.``; the teacher is reloaded from ``teacher_ckpt``), not
    wrapped by DDP, not touched by ``init_weights``, and stays in eval mode
    with ``requires_grad=False``. Device and dtype moves (``.to``,
    ``.cuda``) apply to it too.

    Args:
        student: Student model config, or a config file path (local or
            ``mmdet::``) whose ``model`` is used.
        teacher: Teacher model config or config file path.
        teacher_ckpt: Checkpoint of the teacher, loaded strictly at build.
        methods: Configs of the methods (:class:`DistillMethod`), built in
            order after both detectors. Their loss names are
            ``loss_<name>_<term>``; a second method of one name becomes
            ``<name>2``.
        student_ckpt: Optional checkpoint to start the student from, loaded
            strictly after weight initialisation.
        inherit_teacher: The inheriting strategy of the FGD and MGD authors:
            the student's neck and heads start from the teacher's where
            names and shapes agree (the backbone keeps its own weights),
            in :meth:`init_weights` before the methods' ``init_student``
            and ``student_ckpt``; logged with what was copied
            (``sea_kd/models/utils/teacher_inheriting.py``).
        data_preprocessor: Defaults to the student's data preprocessor.
        **unknown: Refused (``TypeError``) with the fix: a method's option
            given to the distiller goes in its ``methods`` entry.
        init_cfg: Initialisation of the distillation modules.
        nonfinite_loss: What a NaN/inf distillation term does: ``'raise'``
            a :class:`NonFiniteDistillLossError` naming the terms, the
            iteration and the step's inputs, or ``'skip'`` the step's
            distillation terms (the student still trains on its own losses).
        max_consecutive_skips: With ``'skip'``, raise once more steps than
            this in a row are not finite.
        teacher_dtype: ``'float32'`` (default), ``'bfloat16'`` or
            ``'float16'``: the precision the teacher's backbone and neck
            are stored and run in (half the memory of their weights), set
            at the end of :meth:`init_weights` (after the methods'
            ``init_student``, which may copy teacher weights); the neck's
            output is cast back to float32, so the teacher's heads, the
            methods and the losses run in float32
            (:mod:`.teacher_precision`).
        balance: Optional automatic balancing of the terms, e.g.
            ``dict(type='GradientShareBalance', target=0.9)`` or
            ``dict(type='LossRatioBalance')``
            (:mod:`sea_kd.models.balance`): each method's factor (or,
            with its ``groups`` option, each named group of terms') is
            kept near a target share of the student's training signal.

    The distillation terms are multiplied by :attr:`distill_loss_scale` and
    per-method and per-term factors (see :meth:`set_distill_loss_scale` and
    ``DistillLossWeightHook``); at 0 the student trains alone
    (:class:`DistillLossControlsMixin`). With ``balance``, the balance
    factors multiply as well.
    """

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 teacher_ckpt: Optional[str],
                 methods: Sequence[ConfigType] = (),
                 student_ckpt: Optional[str] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 nonfinite_loss: str = 'raise',
                 max_consecutive_skips: int = 10,
                 teacher_dtype: str = 'float32',
                 balance: OptConfigType = None,
                 inherit_teacher: bool = False,
                 **unknown) -> None:
        if unknown:
            raise TypeError(_unknown_options_message(type(self).__name__,
                                                     unknown))
        # a bad name, methods list or balance fails before any build
        teacher_dtype_of(teacher_dtype)
        _check_method_cfgs(methods, type(self).__name__)
        balance_module = build_balance(balance)
        student_cfg = load_model_cfg(student, 'student')
        teacher_cfg = load_model_cfg(teacher, 'teacher')
        if data_preprocessor is None:
            data_preprocessor = student_cfg.get('data_preprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._init_distill_loss_controls(nonfinite_loss,
                                         max_consecutive_skips)
        self.student = MODELS.build(student_cfg)
        #: The streams the teacher's forwards and the methods draw from in
        #: each step: the student's own draws are those of the student alone.
        self.step_streams = StepStreams()

        if not teacher_ckpt:
            raise ValueError(
                f'{type(self).__name__} needs `teacher_ckpt`: distilling from '
                'a randomly initialised teacher would silently teach noise. '
                'Train the teacher first and set `teacher_ckpt` to its '
                'checkpoint.')
        # the teacher and the methods are built on streams of their own:
        # the student's start depends on the seed only, the same as alone
        with random_stream_of_its_own(offset=1):
            teacher_model = MODELS.build(teacher_cfg)
        teacher_meta = load_state_dict_strict(teacher_model, teacher_ckpt,
                                              'teacher_ckpt')
        #: The classes the teacher checkpoint records (``None``: none, or
        #: a backbone teacher, which predicts no classes), for the
        #: class-identity checks before training.
        self.teacher_ckpt_classes = None if is_backbone_teacher(
            teacher_model) else checkpoint_classes(teacher_meta)
        teacher_model.eval()
        teacher_model.requires_grad_(False)
        self.teacher_dtype = teacher_dtype
        self._teacher_precision_set = False
        # bypass nn.Module.__setattr__ so the teacher is not a submodule
        object.__setattr__(self, '_teacher', teacher_model)
        self.teacher_ckpt = teacher_ckpt
        self.student_ckpt = student_ckpt
        if not isinstance(inherit_teacher, bool):
            raise TypeError(f'inherit_teacher must be True or False, got '
                            f'{inherit_teacher!r}.')
        if inherit_teacher and is_backbone_teacher(teacher_model):
            raise ValueError(
                'inherit_teacher copies the teacher\'s neck and heads, and a '
                'BackboneTeacher has neither; set inherit_teacher=False.')
        self.inherit_teacher = inherit_teacher
        #: What the inheriting strategy copied (``'<part>.<key>'``).
        self.inherited_params: List[str] = []

        check_same_classes(self.student, self.teacher)
        # mmengine's ModuleDict: init_weights reaches the methods' modules
        self.methods = ModuleDict()
        with random_stream_of_its_own(offset=2):
            for cfg in methods:
                self._add_method(cfg)
        if inherit_teacher and any(getattr(m, 'inherit_teacher', False)
                                   for m in self.methods.values()):
            raise ValueError(
                'inherit_teacher is set on both the Distiller and a method '
                '(FGD\'s deprecated option); set it on the Distiller only.')
        if balance_module is not None:
            balance_module.bind(self.method_names)
        #: The automatic balancing of the terms (``None``: off).
        self.balance = balance_module
        self._register_load_state_dict_pre_hook(self._unprefixed_keys,
                                                with_module=True)
        #: Whether the teacher's data preprocessor makes the same batch as
        #: the distiller's; otherwise :meth:`teacher_inputs` converts it.
        self.teacher_shares_preprocessing = check_convertible_preprocessing(
            self.data_preprocessor, self.teacher.data_preprocessor)

    def _add_method(self, cfg: ConfigType) -> None:
        """Build a method, bind it to the pair and check what it reads."""
        try:
            method = build_method(cfg, self.student, self.teacher)
            name, n = method.name, 1
            while name in self.methods:
                n += 1
                name = f'{method.name}{n}'
            method.name = name
            self._check_reads(method)
            method.setup()
            self._check_reads(method)
        except (TypeError, ValueError, NotImplementedError) as error:
            # a refused pair: say which methods would distil it
            raise type(error)(
                f'{error}\n{methods_hint(self.student, self.teacher)}'
            ) from error
        self.methods[name] = method

    def _check_reads(self, method) -> None:
        """Whether both detectors can give what ``method`` reads."""
        check_parts(self.student, method.record_parts, 'student')
        check_parts(self.teacher, method.teacher_parts, 'teacher')
        if method.requires_same_dense_layout:
            check_same_dense_layout(self.student, self.teacher)
        for path in method.student_taps:
            module_at(self.student, path, 'student')
        for path in method.teacher_taps:
            module_at(self.teacher, path, 'teacher')
            runs = teacher_modules(method.teacher_parts)
            if path.split('.')[0] not in runs:
                raise ValueError(
                    f'The teacher\'s module `{path}` does not run in a '
                    f'distillation step of {type(method).__name__}: the '
                    f'teacher runs only {", ".join(runs)} for it. Tap a '
                    'module there, or add the record part that runs it '
                    f'({teacher_module_hint()}) to the method\'s '
                    'record_parts.')

    @staticmethod
    def _unprefixed_keys(module: 'Distiller', state_dict: dict, prefix: str,
                         *args) -> None:
        """Load checkpoints of the one-method distillers of sea_kd <= 0.1,
        whose method modules sat on the distiller itself (``adapters.0``
        rather than ``methods.fi.adapters.0``).

        Only a key whose renamed form is one of the method's own is renamed,
        so the keys of another model's checkpoint stay as they are and a
        strict load reports them as unexpected."""
        if len(module.methods) != 1:
            return
        name, method = next(iter(module.methods.items()))
        method_keys = set(method.state_dict(prefix=f'methods.{name}.'))
        for key in [k for k in state_dict if k.startswith(prefix)]:
            renamed = f'methods.{name}.{key[len(prefix):]}'
            if renamed in method_keys:
                state_dict[prefix + renamed] = state_dict.pop(key)

    # ------------------------------------------------------------ what runs
    @property
    def method_names(self) -> Tuple[str, ...]:
        """The methods' names, in order (``loss_<name>_<term>``)."""
        return tuple(self.methods)

    @property
    def record_parts(self) -> Tuple[str, ...]:
        """Record parts the student's side fills: every method's."""
        return ordered_parts(p for m in self.methods.values()
                             for p in m.record_parts)

    @property
    def teacher_parts(self) -> Tuple[str, ...]:
        """Record parts the teacher computes, once, for every method."""
        return ordered_parts(p for m in self.methods.values()
                             for p in m.teacher_parts)

    def _taps(self, role: str) -> List[str]:
        attr = f'{role}_taps'
        return list(dict.fromkeys(
            p for m in self.methods.values() for p in getattr(m, attr)))

    @property
    def detector(self) -> nn.Module:
        """The student, under the name mmdet's training-mode hooks look
        for on a model that wraps a detector (``YOLOXModeSwitchHook``
        switches ``model.detector.bbox_head.use_l1`` on)."""
        return self.student

    # ------------------------------------------------------------ teacher
    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector (not a registered submodule)."""
        return self._teacher

    def __deepcopy__(self, memo: dict) -> 'Distiller':
        """A deep copy that shares the frozen teacher.

        Copies of the distiller (mmengine's ``EMAHook`` keeps one as the
        averaged model) need their own student and method modules, but
        not a second teacher: it never changes and would double its
        memory. Device and dtype moves of the copy (``.to``) therefore
        move the shared teacher too.
        """
        memo[id(self._teacher)] = self._teacher
        cls = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            object.__setattr__(copied, key, copy.deepcopy(value, memo))
        return copied

    def _apply(self, fn, *args, **kwargs):
        """Apply device/dtype moves to the teacher as well."""
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'Distiller':
        """Set the student's mode; the teacher always stays in eval mode."""
        super().train(mode)
        self._teacher.eval()
        return self

    def init_weights(self) -> None:
        """Initialise student and methods, let each method change the
        student's start (:meth:`DistillMethod.init_student`), then load
        ``student_ckpt`` if given. With ``inherit_teacher``, the teacher's
        neck and heads are copied first.

        The student is initialised first, on the run's stream as when it
        trains alone; the methods' modules then on a stream of their own,
        so that the student's later random draws (RoI sampling, denoising
        queries) are those of the student alone with the same seed."""
        self.student.init_weights()
        with random_stream_of_its_own(offset=3, devices=devices_of(self)):
            super().init_weights()
        if self.inherit_teacher:
            self.inherited_params = inherit_teacher_weights(
                self.student, self.teacher)
        for method in self.methods.values():
            method.init_student()
        if self.student_ckpt:
            load_state_dict_strict(self.student, self.student_ckpt,
                                   'student_ckpt')
        # after init_student, which may copy the teacher's full weights
        self._set_teacher_precision()

    def _set_teacher_precision(self) -> None:
        """Apply ``teacher_dtype`` once: at the end of :meth:`init_weights`,
        or at the first teacher forward when that comes first."""
        if not self._teacher_precision_set:
            lower_teacher_precision(self.teacher, self.teacher_dtype)
            self._teacher_precision_set = True

    # ------------------------------------------------------------------ modes
    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Student losses plus every method's losses; one forward of each
        detector."""
        if self._teacher_can_be_skipped(batch_data_samples):
            return self._student_only_loss(batch_inputs, batch_data_samples)
        self._set_teacher_precision()
        teacher_paths, student_paths = self._taps('teacher'), \
            self._taps('student')
        teacher_inputs = self.teacher_inputs(batch_inputs, batch_data_samples)
        record = DistillRecord(data_samples=batch_data_samples,
                               parts=self.record_parts)
        # the stages are labelled for profilers (tools/benchmark.py
        # --profile): STAGE_LABELS
        with ExitStack() as teacher_stack:
            teacher_taps = teacher_stack.enter_context(ModuleTaps(
                self.teacher, teacher_paths, 'teacher')) \
                if teacher_paths else None
            with record_function(STAGE_LABELS['teacher_before']), \
                    self.step_streams.of(0, batch_inputs.device):
                run_teacher_parts(self.teacher, teacher_inputs, record,
                                  self.teacher_parts, after_student=False)
                record.data_samples = self.prepare_student_samples(
                    batch_data_samples, record.teacher_dense)
            with ExitStack() as student_stack, \
                    record_function(STAGE_LABELS['student']):
                student_taps = student_stack.enter_context(ModuleTaps(
                    self.student, student_paths, 'student')) \
                    if student_paths else None
                losses = student_loss_into(self.student, batch_inputs,
                                           record)
            with record_function(STAGE_LABELS['teacher_after']), \
                    self.step_streams.of(1, batch_inputs.device):
                run_teacher_parts(self.teacher, teacher_inputs, record,
                                  self.teacher_parts, after_student=True)
        if student_taps is not None:
            record.student_taps = student_taps.outputs
        if teacher_taps is not None:
            record.teacher_taps = teacher_taps.outputs
        record.student_losses = {
            name: (sum(value) if isinstance(value, (list, tuple)) else
                   value).detach()
            for name, value in losses.items()
        }
        device_type = batch_inputs.device.type
        # distillation losses are computed in fp32 even under AMP
        with torch.autocast(device_type=device_type, enabled=False), \
                self.step_streams.of(2, batch_inputs.device):
            with record_function(STAGE_LABELS['methods_teacher']):
                for name, method in self.methods.items():
                    record.method_outputs[name] = \
                        method.teacher_after_student(record)
            with record_function(STAGE_LABELS['terms']):
                distill = self.distill_losses_from(record)
            if self.balance is not None and self.training:
                with record_function(STAGE_LABELS['balance']):
                    self.balance.observe(distill, losses, self.student)
        with record_function(STAGE_LABELS['controls']):
            distill = self._controlled_distill_terms(
                distill, record, batch_inputs, record.data_samples)
        for term, value in distill.items():
            name = f'loss_{term}'
            if name in losses:
                raise KeyError(f'Distillation loss `{name}` clashes with a '
                               'student loss name.')
            losses[name] = value
        if self.balance is not None:
            losses.update(self.balance.log_values(batch_inputs.device))
        return losses

    def distill_losses_from(self, record: DistillRecord) -> Dict[str, Tensor]:
        """Every method's terms, ``{'<method>_<term>': scalar}``."""
        out = {}
        for name, method in self.methods.items():
            for term, value in method(record).items():
                out[f'{name}_{term}'] = value
        return out

    def prepare_student_samples(
            self, batch_data_samples: SampleList,
            teacher_dense: Optional[DenseHeadOutputs]) -> SampleList:
        """Targets the student trains on: the batch's own, as the methods
        prepare them (:meth:`DistillMethod.prepare_student_samples`).

        Runs after the teacher's backbone, neck and dense head and before the
        student. Images flagged ``metainfo['unlabeled']`` are refused unless
        a method makes their pseudo labels: they would silently train the
        student on empty ground truth.
        """
        unlabeled = any(s.metainfo.get('unlabeled', False)
                        for s in batch_data_samples)
        if unlabeled and not any(m.makes_pseudo_labels
                                 for m in self.methods.values()):
            raise ValueError(
                f'The batch holds unlabeled images, but no method of '
                f'{type(self).__name__} makes pseudo labels. Use a method '
                'with online pseudo labels (e.g. ADL with pseudo_label=dict('
                'score_thr=0.5)) or label them offline with '
                'tools/pseudo_label.py.')
        for method in self.methods.values():
            batch_data_samples = method.prepare_student_samples(
                batch_data_samples, teacher_dense)
        return batch_data_samples

    def teacher_inputs(self,
                       batch_inputs: Tensor,
                       batch_data_samples: Optional[SampleList] = None
                       ) -> Tensor:
        """The batch as the teacher's own data preprocessor would make it.

        The same images as the student's, normalised and padded the
        teacher's way (see :mod:`.teacher_preprocessing`); the very same
        tensor when both preprocessors agree. Every teacher forward of a
        step (backbone, neck, dense head, R-CNN branch) starts from it.
        Converting needs ``batch_data_samples`` (for the padding).
        """
        if self.teacher_shares_preprocessing:
            return batch_inputs
        if batch_data_samples is None:
            raise ValueError(
                'Teacher and student normalise images differently, so the '
                "teacher's inputs need the batch's data samples (to find "
                'the padding); pass batch_data_samples to teacher_inputs.')
        return convert_to_teacher_inputs(batch_inputs, batch_data_samples,
                                         self.data_preprocessor,
                                         self.teacher.data_preprocessor)

    @torch.no_grad()
    def predict_teacher(self,
                        batch_inputs: Tensor,
                        batch_data_samples: SampleList,
                        rescale: bool = True) -> SampleList:
        """Predict with the frozen teacher alone, on the batch as the teacher
        sees it (:meth:`teacher_inputs`); used to evaluate the teacher.

        Args:
            batch_inputs: The batch preprocessed by the distiller's
                ``data_preprocessor``.
            batch_data_samples: Its data samples; the teacher's predictions
                are written into them (``pred_instances``).
            rescale: Whether boxes are rescaled to the original image size.

        Returns:
            The data samples with the teacher's predictions.
        """
        self._set_teacher_precision()
        return self.teacher.predict(
            self.teacher_inputs(batch_inputs, batch_data_samples),
            batch_data_samples, rescale=rescale)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Predict with the student alone."""
        return self.student.predict(batch_inputs, batch_data_samples,
                                    rescale=rescale)

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None):
        """Raw outputs of the student alone (``mode='tensor'``)."""
        return self.student._forward(batch_inputs, batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor) -> Sequence[Tensor]:
        """Neck features of the student."""
        return self.student.extract_feat(batch_inputs)
