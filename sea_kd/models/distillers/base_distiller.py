"""The distiller base: a frozen teacher and a student behind one detector."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor, nn

from ...utils import load_model_cfg, load_state_dict_strict
from ..capture import (DenseHeadOutputs, DistillRecord, check_parts,
                       student_loss_with_record, teacher_dense_forward,
                       teacher_roi_forward)
from .distill_loss_controls import DistillLossControlsMixin
from .pair_checks import check_same_classes, check_same_dense_layout
from .teacher_preprocessing import (check_convertible_preprocessing,
                                    convert_to_teacher_inputs)

ModelSpec = Union[str, ConfigType]


class BaseDistiller(DistillLossControlsMixin, BaseDetector):
    """Base class of sea_kd's distillers.

    A distiller is an mmdet detector: the Runner trains it, validates it and
    saves it like any other. Per training step it runs the frozen teacher
    once (backbone, neck and, if asked for, dense head before the student;
    the R-CNN branch after it, on the student's sampled RoIs), the student's
    own ``loss()`` once, and adds the distillation losses that a subclass
    computes from a :class:`DistillRecord`::

        L = L_student + sum_k L_<method>_<k>

    ``predict`` and ``tensor`` modes run the student alone.

    The teacher is kept outside the module tree: it is not in ``state_dict``
    (checkpoints hold the student and the distillation modules; the teacher
    is reloaded from ``teacher_ckpt``), not wrapped by DDP, not touched by
    ``init_weights``, and stays in eval mode with ``requires_grad=False``.
    Device and dtype moves (``.to``, ``.cuda``) apply to it too.

    Subclasses set :attr:`method_name` and :attr:`record_parts` and implement
    :meth:`distill_losses_from`.

    Args:
        student: Student model config, or a config file path (local or
            ``mmdet::``) whose ``model`` is used.
        teacher: Teacher model config or config file path.
        teacher_ckpt: Checkpoint of the teacher, loaded strictly at build.
        student_ckpt: Optional checkpoint to start the student from, loaded
            strictly after weight initialisation.
        data_preprocessor: Defaults to the student's data preprocessor.
        init_cfg: Initialisation of the distillation modules.
        nonfinite_loss: What a NaN/inf distillation term does: ``'raise'``
            a :class:`NonFiniteDistillLossError` naming the terms, the
            iteration and the step's inputs, or ``'skip'`` the step's
            distillation terms (the student still trains on its own losses).
        max_consecutive_skips: With ``'skip'``, raise once more steps than
            this in a row are not finite.

    The distillation terms are multiplied by :attr:`distill_loss_scale`
    (see :meth:`set_distill_loss_scale` and ``DistillLossWeightHook``);
    at 0 the student trains alone (:class:`DistillLossControlsMixin`).
    """

    #: Prefix of the distillation loss names: ``loss_<method_name>_<term>``.
    method_name: str = 'kd'
    #: Record parts the method reads (see ``RECORD_PARTS``).
    record_parts: Tuple[str, ...] = ('neck', )
    #: Parts the teacher computes before the student, when they differ from
    #: :attr:`record_parts` (e.g. a dense student of a two-stage teacher);
    #: ``None``: the same parts.
    teacher_record_parts: Optional[Tuple[str, ...]] = None
    #: Whether teacher and student must share the dense prior layout.
    requires_same_dense_layout: bool = False

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 teacher_ckpt: Optional[str],
                 student_ckpt: Optional[str] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 nonfinite_loss: str = 'raise',
                 max_consecutive_skips: int = 10) -> None:
        student_cfg = load_model_cfg(student, 'student')
        teacher_cfg = load_model_cfg(teacher, 'teacher')
        if data_preprocessor is None:
            data_preprocessor = student_cfg.get('data_preprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._init_distill_loss_controls(nonfinite_loss,
                                         max_consecutive_skips)
        self.student = MODELS.build(student_cfg)

        if not teacher_ckpt:
            raise ValueError(
                f'{type(self).__name__} needs `teacher_ckpt`: distilling from '
                'a randomly initialised teacher would silently teach noise. '
                'Train the teacher first and set `teacher_ckpt` to its '
                'checkpoint.')
        teacher_model = MODELS.build(teacher_cfg)
        load_state_dict_strict(teacher_model, teacher_ckpt, 'teacher_ckpt')
        teacher_model.eval()
        teacher_model.requires_grad_(False)
        # bypass nn.Module.__setattr__ so the teacher is not a submodule
        object.__setattr__(self, '_teacher', teacher_model)
        self.teacher_ckpt = teacher_ckpt
        self.student_ckpt = student_ckpt

        check_parts(self.student, self.record_parts, 'student')
        check_parts(self.teacher, self.teacher_parts, 'teacher')
        check_same_classes(self.student, self.teacher)
        if self.requires_same_dense_layout:
            check_same_dense_layout(self.student, self.teacher)
        #: Whether the teacher's data preprocessor makes the same batch as
        #: the distiller's; otherwise :meth:`teacher_inputs` converts it.
        self.teacher_shares_preprocessing = check_convertible_preprocessing(
            self.data_preprocessor, self.teacher.data_preprocessor)

    # ------------------------------------------------------------------ teacher
    @property
    def teacher_parts(self) -> Tuple[str, ...]:
        """Record parts the teacher computes."""
        if self.teacher_record_parts is None:
            return tuple(self.record_parts)
        return tuple(self.teacher_record_parts)

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector (not a registered submodule)."""
        return self._teacher

    def _apply(self, fn, *args, **kwargs):
        """Apply device/dtype moves to the teacher as well."""
        super()._apply(fn, *args, **kwargs)
        self._teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'BaseDistiller':
        """Set the student's mode; the teacher always stays in eval mode."""
        super().train(mode)
        self._teacher.eval()
        return self

    def init_weights(self) -> None:
        """Initialise student and distillation modules, then load
        ``student_ckpt`` if given."""
        super().init_weights()
        if self.student_ckpt:
            load_state_dict_strict(self.student, self.student_ckpt,
                                   'student_ckpt')

    # ------------------------------------------------------------------ modes
    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Student losses plus distillation losses, one forward each."""
        if self._teacher_can_be_skipped(batch_data_samples):
            return self._student_only_loss(batch_inputs, batch_data_samples)
        teacher_feats, teacher_dense = teacher_dense_forward(
            self.teacher, self.teacher_inputs(batch_inputs,
                                              batch_data_samples),
            self.teacher_parts)
        batch_data_samples = self.prepare_student_samples(
            batch_data_samples, teacher_dense)
        losses, record = student_loss_with_record(
            self.student, batch_inputs, batch_data_samples, self.record_parts)
        record.teacher_neck, record.teacher_dense = teacher_feats, \
            teacher_dense
        if record.roi is not None:
            teacher_roi_forward(self.teacher, teacher_feats, record.roi)
        record.student_losses = {
            name: (sum(value) if isinstance(value, (list, tuple)) else
                   value).detach()
            for name, value in losses.items()
        }
        device_type = batch_inputs.device.type
        # distillation losses are computed in fp32 even under AMP
        with torch.autocast(device_type=device_type, enabled=False):
            distill = self.distill_losses_from(record)
        distill = self._controlled_distill_terms(distill, record, batch_inputs,
                                                 batch_data_samples)
        for term, value in distill.items():
            name = f'loss_{self.method_name}_{term}'
            if name in losses:
                raise KeyError(f'Distillation loss `{name}` clashes with a '
                               'student loss name.')
            losses[name] = value
        return losses

    def prepare_student_samples(
            self, batch_data_samples: SampleList,
            teacher_dense: Optional[DenseHeadOutputs]) -> SampleList:
        """Targets the student trains on; by default the batch's own.

        Runs after the teacher's backbone, neck and dense head and before the
        student, so a subclass can, for example, give unlabeled images the
        teacher's detections as ground truth. Images flagged
        ``metainfo['unlabeled']`` are refused here: without such a subclass
        they would silently train the student on empty ground truth.
        """
        if any(s.metainfo.get('unlabeled', False)
               for s in batch_data_samples):
            raise ValueError(
                f'The batch holds unlabeled images, but {type(self).__name__}'
                ' does not make pseudo labels. Use a distiller with online '
                'pseudo labels (e.g. ADLDistiller with pseudo_label=dict('
                'score_thr=0.5)) or label them offline with '
                'tools/pseudo_label.py.')
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
        return self.teacher.predict(
            self.teacher_inputs(batch_inputs, batch_data_samples),
            batch_data_samples, rescale=rescale)

    def distill_losses_from(self, record: DistillRecord) -> Dict[str, Tensor]:
        """Compute the method's loss terms, ``{term: scalar}``.

        Names are prefixed by :meth:`loss` to ``loss_<method_name>_<term>``.
        """
        raise NotImplementedError

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
