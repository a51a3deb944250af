"""G-DetKD: semantic-guided feature imitation + contrastive distillation."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, OptConfigType
from mmengine.logging import MMLogger
from torch import Tensor, nn

from ...utils import load_state_dict_strict
from ..capture import DistillRecord, check_parts, teacher_region_forward
from ..utils.head_transfer import copy_matching_state
from ..utils.precision import at_least_fp32
from ..utils.region_budget import regions_within_budget
from ..utils.region_positions import (features_at_regions,
                                      head_finest_scale)
from ..utils.region_sampling import (DEFAULT_PROPOSAL_CFG,
                                     dense_head_proposals, positive_regions,
                                     regions_as_rois, sample_regions)
from .base_distiller import BaseDistiller
from .pair_checks import check_same_box_coding, neck_channels_of

HOMOGENEOUS = 'homogeneous'
HETEROGENEOUS = 'heterogeneous'
#: Where a dense student's region representation for CKD comes from.
DENSE_REGION_REPRS = ('fused_roi', 'head_tower')
#: Which regions SGFI imitates.
SGFI_REGIONS = ('all', 'positive')


def _log(message: str) -> None:
    MMLogger.get_current_instance().info(message)


def _first_stride(stride) -> float:
    return float(stride[0] if isinstance(stride, (tuple, list)) else stride)


@MODELS.register_module()
class GDetKDDistiller(BaseDistiller):
    """G-DetKD (Yao et al., ICCV 2021, arXiv 2108.07482).

    ``L = L_student + loss_gdetkd_sgfi + loss_gdetkd_ckd
    (+ loss_gdetkd_cls + loss_gdetkd_reg)`` on regions, with a two-stage
    teacher. The pipeline follows from the student's type:

    - **homogeneous** (two-stage student, e.g. Faster R-CNN → Faster
      R-CNN): the regions are the student's sampled R-CNN RoIs of the step;
      the teacher's R-CNN branch runs on them. Besides SGFI and CKD, the
      R-CNN class logits (:class:`RCNNLogitKDLoss`, ``cls``) and
      class-specific box deltas (:class:`ClassAwareRegKDLoss`, ``reg``) are
      distilled, and the student's R-CNN bbox head may start from the
      teacher's (``head_transfer``).
    - **heterogeneous** (one-stage student, e.g. RetinaNet or FCOS): the
      student's recorded dense-head outputs are decoded into boxes
      (``proposal_cfg``: pre-NMS 2000 per level, NMS 0.7, at most 1000 per
      image), then assigned and sampled with the teacher's R-CNN assigner
      and sampler (ground truth added as proposals). The student's region
      representation for CKD is a :class:`RegionProjector` on either the
      SGFI fused RoI feature (``dense_region_repr='fused_roi'``) or the
      dense head's classification-tower feature at the region's position
      (``'head_tower'``: the level its size maps to, the cell holding its
      centre; see :func:`features_at_regions`).

    In both, ``sgfi`` is :class:`SGFILoss` (student RoI features of every
    level fused by semantic guidance, against the teacher's RoI feature of
    its own mapped level) and ``ckd`` is :class:`CKDLoss` (InfoNCE between
    the student's and the teacher's region representations; the teacher's
    is its bbox head's last shared FC output). The student runs its own
    ``loss()`` once; the teacher runs without gradient.

    Args:
        loss_sgfi: :class:`SGFILoss` config without the channel and stride
            arguments (filled from the models), or ``None``.
        loss_ckd: :class:`CKDLoss` config without the channel arguments, or
            ``None``.
        loss_cls: :class:`RCNNLogitKDLoss` config or ``None``; homogeneous
            pipeline only (ignored, with a log line, otherwise).
        loss_reg: :class:`ClassAwareRegKDLoss` config or ``None``;
            homogeneous pipeline only.
        head_transfer: Homogeneous pipeline: at ``init_weights``, after the
            student's own initialisation and before ``student_ckpt``, copy
            the teacher's R-CNN bbox head parameters whose names and shapes
            match into the student's (listed in
            :attr:`transferred_head_params`).
        region_projector: Heterogeneous CKD: config of the head from the
            student's region feature to its representation (built with
            ``in_channels`` and ``out_channels``); with ``'head_tower'`` its
            ``pooled_size`` must be 1 (one feature vector per region).
        dense_region_repr: Heterogeneous CKD: the student's region feature,
            ``'fused_roi'`` (the SGFI fused RoI feature; needs ``loss_sgfi``)
            or ``'head_tower'`` (the last ``bbox_head.cls_convs`` output at
            the region's position; the third-party reading). Both are our
            readings: the paper does not say.
        tower_finest_scale: ``'head_tower'``: regions smaller than twice
            this size (``sqrt(w·h)``, pixels) read the first level, each
            doubling one level up; ``None``: read off the student's head
            (:func:`head_finest_scale`: its smallest first-level anchor, or
            half FCOS's first regress range).
        sgfi_regions: ``'all'`` (the paper: every region SGFI and CKD see)
            or ``'positive'`` (only the regions matched to a ground-truth
            box, ours; CKD keeps all). Not with ``'fused_roi'`` CKD, which
            needs the fused feature of every region.
        proposal_cfg: Heterogeneous: the ``predict_by_feat`` test config
            turning the student's outputs into proposals.
        region_sampling: Heterogeneous: ``dict(assigner=..., sampler=...)``
            to sample the regions with; ``None``: the teacher's R-CNN
            assigner and sampler (its ``train_cfg.rcnn``).
        max_regions_per_img: At most this many regions of each image for
            the feature terms (``sgfi`` and ``ckd``), the positive ones
            first, the others at random; ``None`` (the paper): all sampled
            regions. The prediction terms (``cls``, ``reg``) keep every RoI.
            In the heterogeneous pipeline the cap applies before the
            teacher's R-CNN forward, which then runs on fewer regions too.
        **kwargs: See :class:`BaseDistiller`.
    """

    method_name = 'gdetkd'
    record_parts = ('neck', )  # set per pipeline once the student is built

    def __init__(self,
                 *args,
                 loss_sgfi: OptConfigType = dict(
                     type='SGFILoss', loss_weight=1.0),
                 loss_ckd: OptConfigType = dict(
                     type='CKDLoss', loss_weight=0.5),
                 loss_cls: OptConfigType = dict(
                     type='RCNNLogitKDLoss', temperature=1.0,
                     loss_weight=1.0),
                 loss_reg: OptConfigType = dict(
                     type='ClassAwareRegKDLoss', loss_weight=1.0),
                 head_transfer: bool = True,
                 region_projector: ConfigType = dict(
                     type='RegionProjector', pooled_size=2),
                 proposal_cfg: ConfigType = DEFAULT_PROPOSAL_CFG,
                 region_sampling: OptConfigType = None,
                 max_regions_per_img: Optional[int] = None,
                 dense_region_repr: str = 'fused_roi',
                 tower_finest_scale: Optional[float] = None,
                 sgfi_regions: str = 'all',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if sgfi_regions not in SGFI_REGIONS:
            raise ValueError(f'sgfi_regions must be one of {SGFI_REGIONS}, '
                             f'got {sgfi_regions!r}.')
        self.sgfi_regions = sgfi_regions
        if dense_region_repr not in DENSE_REGION_REPRS:
            raise ValueError(
                f'dense_region_repr must be one of {DENSE_REGION_REPRS}, got '
                f'{dense_region_repr!r}.')
        if tower_finest_scale is not None and float(tower_finest_scale) <= 0:
            raise ValueError(f'tower_finest_scale must be > 0 (pixels) or '
                             f'None, got {tower_finest_scale}.')
        self.tower_finest_scale = None if tower_finest_scale is None \
            else float(tower_finest_scale)
        if max_regions_per_img is not None and int(max_regions_per_img) < 1:
            raise ValueError(
                f'max_regions_per_img must be a positive number of regions '
                f'per image or None (all regions), got {max_regions_per_img}.')
        self.max_regions_per_img = None if max_regions_per_img is None \
            else int(max_regions_per_img)
        self.pipeline = self._select_pipeline()
        # the region feature choice matters only to a dense student's CKD
        self.dense_region_repr = dense_region_repr \
            if self.pipeline == HETEROGENEOUS and loss_ckd is not None \
            else None
        if self.pipeline == HOMOGENEOUS:
            self.record_parts = ('neck', 'roi')
        else:
            self.record_parts = ('neck', 'dense_head')
            if self.dense_region_repr == 'head_tower':
                self.record_parts += ('dense_tower', )
            self.teacher_record_parts = ('neck', )
        check_parts(self.student, self.record_parts, 'student')
        check_parts(self.teacher, self.teacher_parts, 'teacher')

        teacher_roi = self.teacher.roi_head
        if teacher_roi.with_shared_head:
            raise ValueError(
                "G-DetKD imitates the teacher's RoI features of an FPN "
                'level; a teacher with a shared RoI head (e.g. Faster R-CNN '
                'C4) is not supported. Use an FPN teacher.')
        extractor = teacher_roi.bbox_roi_extractor
        self.teacher_channels = int(extractor.out_channels)
        self.student_strides, student_channels = self._student_levels()

        if (loss_cls is not None or loss_reg is not None) and \
                self.pipeline == HETEROGENEOUS:
            _log('G-DetKD: the student has no R-CNN head; the prediction '
                 'KD terms (loss_cls, loss_reg) are not used.')
            loss_cls = loss_reg = None
        if all(cfg is None for cfg in (loss_sgfi, loss_ckd, loss_cls,
                                       loss_reg)):
            raise ValueError(
                'GDetKDDistiller has no term to compute: loss_sgfi, loss_ckd'
                ', loss_cls and loss_reg are all None (or not used by the '
                f'{self.pipeline} pipeline). Configure at least one.')
        if self.dense_region_repr == 'fused_roi' and loss_sgfi is None:
            raise ValueError(
                'Heterogeneous CKD represents the dense student\'s regions '
                'by its SGFI fused RoI feature, but loss_sgfi is None. Set '
                "loss_sgfi (loss_weight=0 keeps the fusion without its "
                "imitation term), dense_region_repr='head_tower' or "
                'loss_ckd=None.')
        if self.dense_region_repr == 'fused_roi' and \
                sgfi_regions != 'all':
            raise ValueError(
                "sgfi_regions='positive' leaves the other regions without "
                "the SGFI fused feature that dense_region_repr='fused_roi' "
                "gives CKD; use dense_region_repr='head_tower' or "
                "sgfi_regions='all'.")

        self.loss_sgfi = self._build_sgfi(loss_sgfi, extractor,
                                          student_channels)
        self.region_projector = None
        self.loss_ckd = self._build_ckd(loss_ckd, region_projector)
        self.loss_cls = MODELS.build(loss_cls) if loss_cls is not None \
            else None
        self.loss_reg = None
        if loss_reg is not None:
            check_same_box_coding(self.student.roi_head.bbox_head,
                                  self.teacher.roi_head.bbox_head)
            self.loss_reg = MODELS.build(loss_reg)

        self.head_transfer = bool(head_transfer) and \
            self.pipeline == HOMOGENEOUS
        #: Names (in the student's R-CNN bbox head) that head transfer
        #: copied from the teacher at the last ``init_weights``.
        self.transferred_head_params: List[str] = []

        self.proposal_cfg = dict(proposal_cfg)
        self.region_assigner = self.region_sampler = None
        if self.pipeline == HETEROGENEOUS:
            self.region_assigner, self.region_sampler = \
                self._region_sampling(region_sampling)

    # ------------------------------------------------------------ build-time
    def _select_pipeline(self) -> str:
        if not isinstance(self.teacher, TwoStageDetector):
            raise TypeError(
                f'G-DetKD distils R-CNN region knowledge and needs a '
                f'two-stage teacher (Faster R-CNN, Mask R-CNN, ...), got a '
                f'{type(self.teacher).__name__}.')
        if isinstance(self.student, TwoStageDetector):
            return HOMOGENEOUS
        if isinstance(self.student, SingleStageDetector):
            return HETEROGENEOUS
        raise TypeError(
            f'G-DetKD needs a two-stage student (homogeneous pipeline) or a '
            f'one-stage student (RetinaNet, FCOS, ...; heterogeneous '
            f'pipeline), got a {type(self.student).__name__}.')

    def _build_sgfi(self, cfg: OptConfigType, extractor: nn.Module,
                    student_channels: int) -> Optional[nn.Module]:
        """SGFI with the models' channels and strides; the RoI layer is the
        teacher extractor's unless configured."""
        if cfg is None:
            return None
        layer = extractor.roi_layers[0]
        cfg = dict(cfg)
        cfg.setdefault('roi_layer', dict(
            type=type(layer).__name__, output_size=layer.output_size,
            sampling_ratio=getattr(layer, 'sampling_ratio', 0),
            aligned=getattr(layer, 'aligned', True)))
        loss = MODELS.build(dict(
            cfg, student_channels=student_channels,
            teacher_channels=self.teacher_channels,
            featmap_strides=self.student_strides))
        if tuple(loss.output_size) != _pair(layer.output_size):
            raise ValueError(
                f'SGFI pools {loss.output_size} RoI features but the '
                f"teacher's extractor gives {_pair(layer.output_size)}; drop "
                "roi_layer from loss_sgfi to use the teacher's.")
        return loss

    def _build_ckd(self, cfg: OptConfigType,
                   region_projector: ConfigType) -> Optional[nn.Module]:
        """CKD with the representation sizes; for a dense student also the
        head giving its region representation."""
        if cfg is None:
            return None
        teacher_dim = self._representation_size(self.teacher, 'teacher')
        if self.pipeline == HOMOGENEOUS:
            student_dim = self._representation_size(self.student, 'student')
        else:
            in_channels = self.teacher_channels
            if self.dense_region_repr == 'head_tower':
                if int(region_projector.get('pooled_size', 2)) != 1:
                    raise ValueError(
                        "dense_region_repr='head_tower' gives one feature "
                        'vector per region; set region_projector.pooled_size'
                        f"=1 (got {region_projector.get('pooled_size', 2)}).")
                in_channels = self._tower_channels()
                if self.tower_finest_scale is None:
                    self.tower_finest_scale = head_finest_scale(
                        self.student.bbox_head)
            self.region_projector = MODELS.build(dict(
                region_projector, in_channels=in_channels,
                out_channels=teacher_dim))
            student_dim = teacher_dim
        return MODELS.build(dict(cfg, student_channels=student_dim,
                                 teacher_channels=teacher_dim))

    def _tower_channels(self) -> int:
        """Channels of the student head's last classification-tower layer."""
        return int(self.student.bbox_head.cls_convs[-1].out_channels)

    def _student_levels(self) -> Tuple[List[float], int]:
        """Strides and channels of the student levels SGFI pools from."""
        if self.pipeline == HOMOGENEOUS:
            extractor = self.student.roi_head.bbox_roi_extractor
            return ([float(s) for s in extractor.featmap_strides],
                    int(extractor.out_channels))
        channels = neck_channels_of(self.student)
        strides = [_first_stride(s)
                   for s in self.student.bbox_head.prior_generator.strides]
        if len(strides) != len(channels) or len(set(channels)) != 1:
            raise ValueError(
                f'SGFI pools every student neck level with the dense head\'s '
                f'strides; the neck gives {len(channels)} levels with '
                f'channels {channels} and the head {len(strides)} strides. '
                'Use an FPN neck with one channel number for all levels.')
        return strides, channels[0]

    @staticmethod
    def _representation_size(detector: nn.Module, role: str) -> int:
        fcs = getattr(detector.roi_head.bbox_head, 'shared_fcs', None)
        if fcs is None or len(fcs) == 0:
            raise ValueError(
                f'CKD reads the {role} R-CNN bbox head\'s last shared FC '
                f'output, but {type(detector.roi_head.bbox_head).__name__} '
                'has no shared FC layers. Use a Shared2FCBBoxHead-like head '
                'or set loss_ckd=None.')
        return int(fcs[-1].out_features)

    def _region_sampling(self, region_sampling: OptConfigType):
        if region_sampling is not None:
            missing = {'assigner', 'sampler'} - set(region_sampling)
            if missing:
                raise ValueError(
                    f'region_sampling needs `assigner` and `sampler` configs;'
                    f' missing {sorted(missing)}.')
            return (TASK_UTILS.build(region_sampling['assigner']),
                    TASK_UTILS.build(region_sampling['sampler']))
        roi_head = self.teacher.roi_head
        assigner = getattr(roi_head, 'bbox_assigner', None)
        sampler = getattr(roi_head, 'bbox_sampler', None)
        if assigner is None or sampler is None:
            raise ValueError(
                'The heterogeneous pipeline samples the student\'s boxes with '
                'the teacher\'s R-CNN assigner and sampler, but the teacher '
                'was built without train_cfg.rcnn. Add train_cfg to the '
                'teacher config or set region_sampling=dict(assigner=..., '
                'sampler=...).')
        return assigner, sampler

    # ------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Initialise student and distillation modules, transfer the
        teacher's R-CNN bbox head (``head_transfer``), then load
        ``student_ckpt`` if given."""
        student_ckpt, self.student_ckpt = self.student_ckpt, None
        try:
            super().init_weights()
        finally:
            self.student_ckpt = student_ckpt
        self.transferred_head_params = []
        if self.head_transfer:
            copied, skipped = copy_matching_state(
                self.teacher.roi_head.bbox_head,
                self.student.roi_head.bbox_head)
            self.transferred_head_params = copied
            _log(f'G-DetKD head transfer: copied {len(copied)} entries of '
                 f'the teacher\'s R-CNN bbox head into the student\'s '
                 f'({", ".join(copied) or "none"}); kept '
                 f'{len(skipped)} ({", ".join(skipped) or "none"}).')
        if student_ckpt:
            load_state_dict_strict(self.student, student_ckpt,
                                   'student_ckpt')

    # ------------------------------------------------------------ losses
    def distill_losses_from(self, record: DistillRecord) -> Dict[str, Tensor]:
        if self.pipeline == HOMOGENEOUS:
            roi = record.roi
            rois, teacher_feats = roi.rois, roi.teacher_feats
            student_repr, teacher_repr = roi.student_repr, roi.teacher_repr
            positive = positive_regions(roi.sampling_results)
            if self.max_regions_per_img is not None:
                keep = regions_within_budget(rois[:, 0], positive,
                                             self.max_regions_per_img)
                rois, teacher_feats = rois[keep], teacher_feats[keep]
                positive = positive[keep]
                student_repr = _rows(student_repr, keep)
                teacher_repr = _rows(teacher_repr, keep)
        else:
            rois, positive = self.heterogeneous_rois(record)
            teacher = teacher_region_forward(self.teacher,
                                             record.teacher_neck, rois)
            teacher_feats, teacher_repr = teacher['bbox_feats'], \
                teacher['repr']
            student_repr = None
        levels = list(record.student_neck[:len(self.student_strides)])

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
            if self.dense_region_repr == 'head_tower':
                # upcast after the gather: only K vectors, not the maps
                tower = at_least_fp32(features_at_regions(
                    record.student_cls_tower, rois, self.student_strides,
                    self.tower_finest_scale))
                student_repr = self.region_projector(tower[:, :, None, None])
            elif self.dense_region_repr == 'fused_roi':
                student_repr = self.region_projector(fused)
            losses['ckd'] = self.loss_ckd(student_repr, teacher_repr, rois)
        if self.loss_cls is not None:
            losses['cls'] = self.loss_cls(record.roi.student_cls,
                                          record.roi.teacher_cls)
        if self.loss_reg is not None:
            losses['reg'] = self.loss_reg(record.roi.student_reg,
                                          record.roi.teacher_reg,
                                          record.roi.teacher_cls)
        return losses

    def heterogeneous_rois(self,
                           record: DistillRecord) -> Tuple[Tensor, Tensor]:
        """Regions of a dense student: its decoded boxes of the step,
        sampled by the teacher's R-CNN assigner and sampler.

        Returns:
            tuple: (K, 5) rois and (K,) bool, whether each is a positive.
        """
        dense = record.student_dense
        proposals = dense_head_proposals(
            self.student.bbox_head, dense.cls_scores, dense.bbox_preds,
            dense.extras[0] if dense.extras else None,
            record.batch_img_metas, self.proposal_cfg)
        results = sample_regions(proposals, record.data_samples,
                                 self.region_assigner, self.region_sampler)
        rois, positive = regions_as_rois(results), positive_regions(results)
        if self.max_regions_per_img is None:
            return rois, positive
        keep = regions_within_budget(rois[:, 0], positive,
                                     self.max_regions_per_img)
        return rois[keep], positive[keep]


def _rows(tensor: Optional[Tensor], keep: Tensor) -> Optional[Tensor]:
    return None if tensor is None else tensor[keep]


def _pair(size) -> Tuple[int, int]:
    return tuple(size) if isinstance(size, (tuple, list)) else (size, size)
