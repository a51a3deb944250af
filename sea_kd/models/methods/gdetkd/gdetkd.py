"""G-DetKD: what its two pipelines share, and the choice between them."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from mmengine.logging import MMLogger
from mmengine.utils import to_2tuple
from torch import Tensor, nn

from ....utils.checked_choice import checked_choice
from ...capture import DistillRecord
from ...detectors import is_dense_detector, is_two_stage_detector, rcnn_stage
from ..distill_method import DistillMethod
from ..pair_requirement import PairRequirement

HOMOGENEOUS = 'homogeneous'
HETEROGENEOUS = 'heterogeneous'
#: Which regions SGFI imitates.
SGFI_REGIONS = ('all', 'positive')
#: The pipelines by the kind of student they serve (:func:`gdetkd_pipeline`).
PIPELINES: Dict[str, type] = {}


def gdetkd_pipeline(kind: str):
    """Class decorator: the :class:`GDetKD` pipeline serving ``kind``
    (:data:`HOMOGENEOUS`: two-stage students, :data:`HETEROGENEOUS`:
    one-stage students), which :meth:`GDetKD.for_pair` picks."""

    def register(cls: type) -> type:
        cls.pipeline = kind
        PIPELINES[kind] = cls
        return cls

    return register


def log(message: str) -> None:
    MMLogger.get_current_instance().info(message)


def rows(tensor: Optional[Tensor], keep: Tensor) -> Optional[Tensor]:
    """``tensor[keep]``, passing ``None`` through."""
    return None if tensor is None else tensor[keep]


def _two_stage_teacher(student: nn.Module, teacher: nn.Module) -> None:
    if not is_two_stage_detector(teacher):
        raise TypeError(
            f'G-DetKD distils R-CNN region knowledge and needs a '
            f'two-stage teacher (Faster R-CNN, Mask R-CNN, ...), got a '
            f'{type(teacher).__name__}.')


def _one_or_two_stage_student(student: nn.Module,
                              teacher: nn.Module) -> None:
    if not (is_two_stage_detector(student) or is_dense_detector(student)):
        raise TypeError(
            f'G-DetKD needs a two-stage student (homogeneous pipeline) '
            f'or a one-stage student (RetinaNet, FCOS, ...; '
            f'heterogeneous pipeline), got a {type(student).__name__}.')


@MODELS.register_module()
class GDetKD(DistillMethod):
    """G-DetKD (Yao et al., ICCV 2021, arXiv 2108.07482) on regions, with a
    two-stage teacher.

    ``dict(type='GDetKD', ...)`` builds the pipeline that serves the pair
    (:meth:`for_pair`): :class:`GDetKDTwoStage` for a two-stage student
    (homogeneous), :class:`GDetKDDense` for a one-stage student
    (heterogeneous); options of the other pipeline are dropped with a log
    line. Both compute

    - ``sgfi``: :class:`SGFILoss`, the student's RoI features of every level
      fused by semantic guidance, against the teacher's RoI feature of its
      own mapped level;
    - ``ckd``: :class:`CKDLoss`, InfoNCE between the student's and the
      teacher's region representations (the teacher's is its bbox head's
      last shared FC output).

    Args:
        loss_sgfi: :class:`SGFILoss` config without the channel and stride
            arguments (filled from the models), or ``None``.
        loss_ckd: :class:`CKDLoss` config without the channel arguments, or
            ``None``.
        sgfi_regions: ``'all'`` (the paper: every region SGFI and CKD see)
            or ``'positive'`` (only the regions matched to a ground-truth
            box, ours; CKD keeps all).
        max_regions_per_img: At most this many regions of each image for
            the feature terms (``sgfi`` and ``ckd``), the positive ones
            first, the others at random; ``None`` (the paper): all sampled
            regions.
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'gdetkd'
    display_name = 'G-DetKD'
    pair_requirements = (
        PairRequirement('needs a two-stage teacher', _two_stage_teacher),
        PairRequirement('needs a one- or two-stage student',
                        _one_or_two_stage_student))
    pipeline: Optional[str] = None
    #: Options only this pipeline takes (the others are dropped by the
    #: ``GDetKD`` choice).
    own_options: Tuple[str, ...] = ()

    def __init__(self,
                 loss_sgfi: OptConfigType = dict(
                     type='SGFILoss', loss_weight=1.0),
                 loss_ckd: OptConfigType = dict(
                     type='CKDLoss', loss_weight=0.5),
                 sgfi_regions: str = 'all',
                 max_regions_per_img: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if type(self) is GDetKD:
            raise TypeError('GDetKD picks its pipeline from the pair; build '
                            'it inside a Distiller (methods=[dict(type='
                            "'GDetKD')]).")
        checked_choice('sgfi_regions', sgfi_regions, SGFI_REGIONS)
        self.sgfi_regions = sgfi_regions
        if max_regions_per_img is not None and int(max_regions_per_img) < 1:
            raise ValueError(
                f'max_regions_per_img must be a positive number of regions '
                f'per image or None (all regions), got {max_regions_per_img}.')
        self.max_regions_per_img = None if max_regions_per_img is None \
            else int(max_regions_per_img)
        self._loss_sgfi_cfg, self._loss_ckd_cfg = loss_sgfi, loss_ckd
        #: Names of the teacher R-CNN head parameters copied into the
        #: student at initialisation (two-stage pipeline's head transfer).
        self.transferred_head_params: List[str] = []

    # ------------------------------------------------------------ the choice
    @classmethod
    def for_pair(cls, student: nn.Module, teacher: nn.Module,
                 cfg: dict) -> Tuple[type, dict]:
        if cls is not GDetKD:
            return cls, cfg
        kind = HOMOGENEOUS if is_two_stage_detector(student) \
            else HETEROGENEOUS
        chosen = PIPELINES[kind]
        dropped = [k for other in PIPELINES.values() if other is not chosen
                   for k in other.own_options if k in cfg]
        if dropped:
            log(f'G-DetKD: the {chosen.pipeline} pipeline does not use '
                f'{", ".join(dropped)}.')
        return chosen, {k: v for k, v in cfg.items() if k not in dropped}

    # ------------------------------------------------------------ build-time
    def setup(self) -> None:
        teacher_roi = self.teacher.roi_head
        if teacher_roi.with_shared_head:
            raise ValueError(
                "G-DetKD imitates the teacher's RoI features of an FPN "
                'level; a teacher with a shared RoI head (e.g. Faster R-CNN '
                'C4) is not supported. Use an FPN teacher.')
        self.teacher_channels = int(
            rcnn_stage(self.teacher).extractor.out_channels)

    def check_has_terms(self, *configs) -> None:
        """Refuse a pipeline with no term to compute."""
        if all(cfg is None for cfg in configs):
            raise ValueError(
                'G-DetKD has no term to compute: loss_sgfi, loss_ckd'
                ', loss_cls and loss_reg are all None (or not used by the '
                f'{self.pipeline} pipeline). Configure at least one.')

    def build_sgfi(self, student_strides: List[float],
                   student_channels: int) -> Optional[nn.Module]:
        """SGFI with the models' channels and strides; the RoI layer is the
        teacher extractor's unless configured."""
        cfg = self._loss_sgfi_cfg
        if cfg is None:
            return None
        layer = rcnn_stage(self.teacher).extractor.roi_layers[0]
        cfg = dict(cfg)
        cfg.setdefault('roi_layer', dict(
            type=type(layer).__name__, output_size=layer.output_size,
            sampling_ratio=getattr(layer, 'sampling_ratio', 0),
            aligned=getattr(layer, 'aligned', True)))
        loss = MODELS.build(dict(
            cfg, student_channels=student_channels,
            teacher_channels=self.teacher_channels,
            featmap_strides=student_strides))
        teacher_size = tuple(to_2tuple(layer.output_size))
        if tuple(loss.output_size) != teacher_size:
            raise ValueError(
                f'SGFI pools {loss.output_size} RoI features but the '
                f"teacher's extractor gives {teacher_size}; drop "
                "roi_layer from loss_sgfi to use the teacher's.")
        return loss

    @staticmethod
    def representation_size(detector: nn.Module, role: str) -> int:
        """Width of a detector's R-CNN region representation."""
        head = rcnn_stage(detector).bbox_head
        fcs = getattr(head, 'shared_fcs', None)
        if fcs is None or len(fcs) == 0:
            raise ValueError(
                f'CKD reads the {role} R-CNN bbox head\'s last shared FC '
                f'output, but {type(head).__name__} '
                'has no shared FC layers. Use a Shared2FCBBoxHead-like head '
                'or set loss_ckd=None.')
        return int(fcs[-1].out_features)

    # ------------------------------------------------------------ losses
    def region_terms(self, levels: List[Tensor], rois: Tensor,
                     positive: Tensor, teacher_feats: Tensor,
                     teacher_repr: Optional[Tensor],
                     student_repr_of) -> Dict[str, Tensor]:
        """``sgfi`` and ``ckd`` on the step's regions.

        Args:
            levels: The student's feature levels SGFI pools from.
            rois: (K, 5) regions; ``positive`` (K,) bool.
            teacher_feats: (K, C, h, w) the teacher's RoI features.
            teacher_repr: (K, D) the teacher's region representations.
            student_repr_of: ``f(fused)`` giving the student's (K, D')
                representations from the SGFI fused feature (``None`` when
                SGFI did not fuse every region).
        """
        losses: Dict[str, Tensor] = {}
        fused = None
        if self.loss_sgfi is not None:
            if self.sgfi_regions == 'positive':
                losses['sgfi'] = self.loss_sgfi(levels,
                                                teacher_feats[positive],
                                                rois[positive])
            else:
                losses['sgfi'], fused = self.loss_sgfi(
                    levels, teacher_feats, rois, return_fused=True)
        if self.loss_ckd is not None:
            losses['ckd'] = self.loss_ckd(student_repr_of(fused),
                                          teacher_repr, rois)
        return losses

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        raise NotImplementedError
