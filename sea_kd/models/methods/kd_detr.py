"""KD-DETR: distillation of DETR-family decoders on consistent
distillation points (Wang et al., CVPR 2024)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice
from ..capture import DistillRecord
from ..detectors import (DecoderQueries, decoder_view_families,
                         query_decoder_view)
from .distill_method import DistillMethod
from .pair_requirement import PairRequirement, for_both

#: what the general points' content queries are
GENERAL_CONTENT = ('zeros', 'random')
#: which student decoder layers are distilled
LAYERS = ('all', 'last')


def _decoder_view_of(detector: nn.Module, role: str) -> None:
    """Raise unless sea_kd can run the detector's decoder on given
    queries (a decoder view of its class, of a form it supports)."""
    try:
        view = query_decoder_view(detector)
    except TypeError as error:  # a form the view does not support
        raise TypeError(f'KD-DETR cannot run the {role}\'s decoder on '
                        f'distillation points: {error}') from error
    if view is None:
        raise TypeError(
            f'KD-DETR runs the {role}\'s decoder on distillation points, '
            f'but sea_kd has no decoder view of its '
            f'{type(detector).__name__} (it has one of '
            f'{decoder_view_families()}). Use a detector of those '
            'families, or distil its decoder outputs with HMLD or its '
            'neck with FI or PKD.')


@MODELS.register_module()
class KDDETR(DistillMethod):
    """KD-DETR: the teacher and the student decode the same distillation
    points, and the student learns the teacher's outputs on them.

    Written after the authors' code (``Myleswork/KD-DETR``, DAB-DETR; see
    ``docs/methods/kd_detr.md`` for the files, the commit and every
    difference). Two kinds of points, each run through both decoders in a
    decoder call of its own, so that they see none of the detectors' own
    queries and change none of their predictions:

    * **specific points** (``loss_kddetr_spec_*``): the teacher's own
      matching queries of the step (its content queries and reference
      boxes; DINO's and two-stage Deformable DETR's are its top encoder
      proposals, DAB-DETR's its learned anchors). Their targets are the
      teacher's own last-layer outputs, so the teacher runs nothing more
      for them.
    * **general points** (``loss_kddetr_gen_*``): ``K`` boxes drawn anew
      every step, each coordinate ``σ(u)`` with ``u ~ N(0, 1)``, shared by
      the images of the batch, with zero content queries (the authors'
      DAB-DETR form); the teacher decodes them under ``no_grad``.

    Every student decoder layer (``layers='all'``, the authors') learns
    the teacher's last layer through :class:`KDDETRLoss` (softmax KL at
    ``T = 10`` weighted by the teacher's foreground score, L1 and GIoU;
    weights 1, 5, 2 for each kind of point). The student's own losses are
    unchanged.

    Args:
        specific_points: Distil on the teacher's matching queries.
        num_general_points: ``K``; ``None``: the student's number of
            queries (the authors' 300 for their 300-query DAB-DETR); 0:
            no general points.
        general_content: ``'zeros'`` (the authors') or ``'random'``
            (``N(0, 1)`` content queries, shared by both decoders).
        layers: ``'all'``: every student decoder layer learns the
            teacher's last (the authors'); ``'last'``: the last layer only.
        loss_kd: Config of the loss (default :class:`KDDETRLoss` with the
            authors' temperature and weights).
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'kddetr'
    display_name = 'KD-DETR'
    record_parts = ('queries', )
    pair_requirements = (PairRequirement(
        'needs DINO, DAB-DETR or two-stage Deformable DETR decoders',
        for_both(_decoder_view_of)), )

    def __init__(self,
                 specific_points: bool = True,
                 num_general_points: Optional[int] = None,
                 general_content: str = 'zeros',
                 layers: str = 'all',
                 loss_kd: ConfigType = dict(type='KDDETRLoss'),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        checked_choice('general_content', general_content, GENERAL_CONTENT)
        checked_choice('layers', layers, LAYERS)
        if not isinstance(specific_points, bool):
            raise TypeError('specific_points must be True or False, got '
                            f'{specific_points!r}.')
        if num_general_points is not None and (
                isinstance(num_general_points, bool)
                or not isinstance(num_general_points, int)
                or num_general_points < 0):
            raise ValueError('num_general_points must be None or an integer '
                             f'of at least 0, got {num_general_points!r}.')
        if not specific_points and num_general_points == 0:
            raise ValueError(
                'KD-DETR with specific_points=False and '
                'num_general_points=0 distils nothing; keep one kind of '
                'points.')
        self.specific_points = specific_points
        self.num_general_points = num_general_points
        self.general_content = general_content
        self.layers = layers
        self.loss_kd = MODELS.build(loss_kd)

    def setup(self) -> None:
        self.student_view = query_decoder_view(self.student)
        self.teacher_view = query_decoder_view(self.teacher)
        if self.num_general_points is None:
            self.num_general_points = self.student_view.num_queries
        s_dims = self.student_view.embed_dims
        t_dims = self.teacher_view.embed_dims
        # content of one width read by the other decoder: the teacher's
        # (specific points) by the student, the student-width random draw
        # by the teacher (a two-stage Deformable DETR reads no content)
        student_reads = self.specific_points and \
            self.student_view.uses_content
        teacher_reads = self.general_content == 'random' and \
            self.teacher_view.uses_content
        if s_dims != t_dims and (student_reads or teacher_reads):
            feeds = 'the teacher\'s content queries' \
                if student_reads else 'the same random content'
            raise ValueError(
                f'KD-DETR feeds {feeds} to both decoders, but the '
                f'student\'s queries have {s_dims} dimensions and the '
                f'teacher\'s {t_dims}. Pair decoders of one width, or set '
                "specific_points=False with general_content='zeros'.")

    def general_queries(
            self, batch_size: int,
            device: torch.device) -> Tuple[DecoderQueries, DecoderQueries]:
        """The step's general points for the student and the teacher:
        the same boxes, and the same content (zeros of each decoder's
        width, or one random draw)."""
        num = self.num_general_points
        boxes = torch.randn(num, 4, device=device).sigmoid()
        boxes = boxes.expand(batch_size, num, 4)
        s_dims = self.student_view.embed_dims
        if self.general_content == 'random':
            content = torch.randn(num, s_dims, device=device).expand(
                batch_size, num, s_dims)
            return (DecoderQueries(content, boxes),
                    DecoderQueries(content, boxes))
        t_dims = self.teacher_view.embed_dims
        return (DecoderQueries(boxes.new_zeros(batch_size, num, s_dims),
                               boxes),
                DecoderQueries(boxes.new_zeros(batch_size, num, t_dims),
                               boxes))

    def _terms(self, kind: str, student: Tuple[Tensor, Tensor],
               teacher: Tuple[Tensor, Tensor]) -> Dict[str, Tensor]:
        s_cls, s_box = student
        if self.layers == 'last':
            s_cls, s_box = s_cls[-1:], s_box[-1:]
        terms = self.loss_kd(s_cls, s_box, teacher[0], teacher[1])
        return {f'{kind}_{term}': value for term, value in terms.items()}

    def decoded_points(
        self, record: DistillRecord
    ) -> List[Tuple[str, Tuple[Tensor, Tensor], Tuple[Tensor, Tensor]]]:
        """Both decoders' outputs on the step's points, as ``[(kind,
        (student cls, boxes of every layer), (teacher cls, boxes of its last
        layer))]`` with ``kind`` ``'spec'`` or ``'gen'``."""
        s_inputs = record.student_queries.decoder_inputs
        teacher = record.teacher_queries
        decoded = []
        if self.specific_points:
            queries = self.teacher_view.matching_queries(
                teacher.decoder_inputs).detach()
            decoded.append(
                ('spec', self.student_view.decode(s_inputs, queries),
                 (teacher.cls_scores[-1], teacher.bbox_preds[-1])))
        if self.num_general_points > 0:
            batch_size = teacher.cls_scores.shape[1]
            s_queries, t_queries = self.general_queries(
                batch_size, teacher.cls_scores.device)
            with torch.no_grad():
                t_cls, t_box = self.teacher_view.decode(
                    teacher.decoder_inputs, t_queries)
            decoded.append(
                ('gen', self.student_view.decode(s_inputs, s_queries),
                 (t_cls[-1], t_box[-1])))
        return decoded

    def own_passes(self, record: DistillRecord) -> List[Tensor]:
        """The student's decoder and head on the points, forward and
        backward, and the teacher's on the general points, by design."""
        return [t for _, student, teacher in self.decoded_points(record)
                for t in (*student, *teacher)]

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        losses = {}
        for kind, student, teacher in self.decoded_points(record):
            losses.update(self._terms(kind, student, teacher))
        return losses
