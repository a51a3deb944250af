"""G-DetKD from a two-stage teacher to a one-stage student (the
heterogeneous pipeline)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, OptConfigType
from torch import Tensor, nn

from ....utils.checked_choice import checked_choice
from ...capture import DistillRecord, teacher_region_forward
from ...detectors import checked_dense_view, rcnn_stage
from ...detectors.pair_checks import neck_channels_of
from ...detectors.strides import level_strides
from ..pair_requirement import PairRequirement
from .gdetkd import HETEROGENEOUS, GDetKD, gdetkd_pipeline
from .region_budget import regions_within_budget
from .region_repr import DENSE_REGION_REPRS, dense_region_repr_names
from .region_sampling import (DEFAULT_PROPOSAL_CFG, dense_head_proposals,
                              positive_regions, regions_as_rois,
                              sample_regions)


def _student_predicts_boxes_alone(student: nn.Module,
                                  teacher: nn.Module) -> None:
    head = student.bbox_head
    if not checked_dense_view(head, 'student').predicts_boxes_alone:
        raise TypeError(
            "G-DetKD's heterogeneous pipeline samples its regions from the "
            "student's own detections, made from its class scores and box "
            f'outputs; a {type(head).__name__} makes them with its mask '
            'branch too. Use the box-only head of the family (e.g. RTMDet '
            'for RTMDet-Ins) or a feature method.')


@MODELS.register_module()
@gdetkd_pipeline(HETEROGENEOUS)
class GDetKDDense(GDetKD):
    """G-DetKD with a one-stage student (e.g. Faster R-CNN → RetinaNet or
    FCOS).

    The student's recorded dense-head outputs are decoded into boxes
    (``proposal_cfg``: pre-NMS 2000 per level, NMS 0.7, at most 1000 per
    image), then assigned and sampled with the teacher's R-CNN assigner and
    sampler (ground truth added as proposals); the teacher's R-CNN branch
    runs on them after the student (:meth:`teacher_after_student`). The
    terms are ``sgfi`` and ``ckd`` (:class:`GDetKD`). The student's region
    representation for CKD is a :class:`RegionProjector` on either the SGFI
    fused RoI feature (``dense_region_repr='fused_roi'``) or the dense
    head's classification-tower feature at the region's position
    (``'head_tower'``: the level its size maps to, the cell holding its
    centre; see :func:`features_at_regions`); each is a registered
    :class:`DenseRegionRepr` (``region_repr.py``).

    Args:
        region_projector: Config of the head from the student's region
            feature to its representation (built with ``in_channels`` and
            ``out_channels``); with ``'head_tower'`` its ``pooled_size``
            must be 1 (one feature vector per region).
        dense_region_repr: The name of a registered
            :class:`DenseRegionRepr`: ``'fused_roi'`` (the SGFI fused RoI
            feature; needs ``loss_sgfi``) or ``'head_tower'`` (the last
            ``bbox_head.cls_convs`` output at the region's position; the
            third-party reading). Both are our readings: the paper does not
            say.
        tower_finest_scale: ``'head_tower'``: regions smaller than twice
            this size (``sqrt(w·h)``, pixels) read the first level, each
            doubling one level up; ``None``: read off the student's head
            (:func:`head_finest_scale`: its smallest first-level anchor, or
            half FCOS's first regress range).
        proposal_cfg: The ``predict_by_feat`` test config turning the
            student's outputs into proposals.
        region_sampling: ``dict(assigner=..., sampler=...)`` to sample the
            regions with; ``None``: the teacher's R-CNN assigner and sampler
            (its ``train_cfg.rcnn``).
        **kwargs: See :class:`GDetKD`. ``sgfi_regions='positive'`` does not
            go with ``'fused_roi'`` CKD, which needs the fused feature of
            every region; ``max_regions_per_img`` applies before the
            teacher's R-CNN forward, which then runs on fewer regions too.
    """

    record_parts = ('neck', 'dense_head')
    teacher_record_parts = ('neck', )
    pair_requirements = GDetKD.pair_requirements + (
        PairRequirement('needs a student whose detections are boxes alone',
                        _student_predicts_boxes_alone), )
    own_options = ('region_projector', 'dense_region_repr',
                   'tower_finest_scale', 'proposal_cfg', 'region_sampling')

    def __init__(self,
                 region_projector: ConfigType = dict(
                     type='RegionProjector', pooled_size=2),
                 dense_region_repr: str = 'fused_roi',
                 tower_finest_scale: Optional[float] = None,
                 proposal_cfg: ConfigType = DEFAULT_PROPOSAL_CFG,
                 region_sampling: OptConfigType = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        checked_choice('dense_region_repr', dense_region_repr,
                       dense_region_repr_names())
        if tower_finest_scale is not None and float(tower_finest_scale) <= 0:
            raise ValueError(f'tower_finest_scale must be > 0 (pixels) or '
                             f'None, got {tower_finest_scale}.')
        self.tower_finest_scale = None if tower_finest_scale is None \
            else float(tower_finest_scale)
        # the region feature choice matters only to CKD
        self.dense_region_repr = dense_region_repr \
            if self._loss_ckd_cfg is not None else None
        self.region_repr = None
        if self.dense_region_repr is not None:
            self.region_repr = DENSE_REGION_REPRS.get(dense_region_repr)()
            self.record_parts = self.record_parts + \
                self.region_repr.record_parts
        self._region_projector_cfg = region_projector
        self.proposal_cfg = dict(proposal_cfg)
        self._region_sampling_cfg = region_sampling

    def setup(self) -> None:
        super().setup()
        self.check_has_terms(self._loss_sgfi_cfg, self._loss_ckd_cfg)
        if self.region_repr is not None:
            self.region_repr.check(self)
        self.student_strides, student_channels = self._student_levels()
        self.loss_sgfi = self.build_sgfi(self.student_strides,
                                         student_channels)
        self.region_projector = None
        self.loss_ckd = self._build_ckd()
        self.region_assigner, self.region_sampler = self._region_sampling()
        # the two-stage pipeline's R-CNN output terms do not apply
        self.loss_cls = self.loss_reg = None

    def _student_levels(self) -> Tuple[List[float], int]:
        """Strides and channels of the student levels SGFI pools from."""
        channels = neck_channels_of(self.student)
        strides = level_strides(self.student.bbox_head)
        if len(strides) != len(channels) or len(set(channels)) != 1:
            raise ValueError(
                f'SGFI pools every student neck level with the dense head\'s '
                f'strides; the neck gives {len(channels)} levels with '
                f'channels {channels} and the head {len(strides)} strides. '
                'Use an FPN neck with one channel number for all levels.')
        return strides, channels[0]

    def _build_ckd(self):
        """CKD with the representation sizes and the projector giving the
        student's region representation."""
        cfg = self._loss_ckd_cfg
        if cfg is None:
            return None
        teacher_dim = self.representation_size(self.teacher, 'teacher')
        in_channels = self.region_repr.in_channels(self)
        self.region_projector = MODELS.build(dict(
            self._region_projector_cfg, in_channels=in_channels,
            out_channels=teacher_dim))
        return MODELS.build(dict(cfg, student_channels=teacher_dim,
                                 teacher_channels=teacher_dim))

    def _region_sampling(self):
        cfg = self._region_sampling_cfg
        if cfg is not None:
            missing = {'assigner', 'sampler'} - set(cfg)
            if missing:
                raise ValueError(
                    f'region_sampling needs `assigner` and `sampler` configs;'
                    f' missing {sorted(missing)}.')
            return (TASK_UTILS.build(cfg['assigner']),
                    TASK_UTILS.build(cfg['sampler']))
        stage = rcnn_stage(self.teacher)
        assigner, sampler = stage.assigner, stage.sampler
        if assigner is None or sampler is None:
            raise ValueError(
                'The heterogeneous pipeline samples the student\'s boxes with '
                'the teacher\'s R-CNN assigner and sampler, but the teacher '
                'was built without train_cfg.rcnn. Add train_cfg to the '
                'teacher config or set region_sampling=dict(assigner=..., '
                'sampler=...).')
        return assigner, sampler

    # ------------------------------------------------------------ per step
    def heterogeneous_rois(self,
                           record: DistillRecord) -> Tuple[Tensor, Tensor]:
        """Regions of the dense student: its decoded boxes of the step,
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

    def teacher_after_student(self, record: DistillRecord) -> Dict[str, Any]:
        """The regions, and the teacher's R-CNN branch on them."""
        rois, positive = self.heterogeneous_rois(record)
        teacher = teacher_region_forward(self.teacher, record.teacher_neck,
                                         rois)
        return dict(rois=rois, positive=positive,
                    feats=teacher['bbox_feats'], repr=teacher['repr'])

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        regions = record.method_outputs[self.name]
        rois = regions['rois']

        def student_repr_of(fused: Optional[Tensor]) -> Tensor:
            return self.region_projector(
                self.region_repr.features(self, record, rois, fused))

        levels = list(record.student_neck[:len(self.student_strides)])
        return self.region_terms(levels, rois, regions['positive'],
                                 regions['feats'], regions['repr'],
                                 student_repr_of)
