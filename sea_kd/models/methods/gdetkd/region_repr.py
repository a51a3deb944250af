"""How a dense student represents its regions for G-DetKD's CKD: the
registered choices of ``GDetKDDense(dense_region_repr=...)``.

A choice is a :class:`DenseRegionRepr` registered in
:data:`DENSE_REGION_REPRS` under the name a config gives; a new reading of
the student's region feature is one registered subclass.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

from mmengine.registry import Registry
from torch import Tensor

from ...capture import DistillRecord
from ...capture.record_parts import last_tower_layers
from ...utils.precision import at_least_fp32
from .region_positions import features_at_regions, head_finest_scale

if TYPE_CHECKING:  # pragma: no cover
    from .dense import GDetKDDense

#: The dense student's region representations, by config name.
DENSE_REGION_REPRS = Registry('G-DetKD dense region representation')


class DenseRegionRepr:
    """Where a dense student's region feature for CKD comes from; the
    method's :class:`RegionProjector` maps it to the teacher's width."""

    #: Record parts it needs beyond the dense pipeline's own.
    record_parts: Tuple[str, ...] = ()

    def check(self, method: 'GDetKDDense') -> None:
        """Refuse the method's settings this reading cannot serve (at
        ``setup``, before any term is built)."""

    def in_channels(self, method: 'GDetKDDense') -> int:
        """Channels of the region feature (the projector's input)."""
        raise NotImplementedError

    def features(self, method: 'GDetKDDense', record: DistillRecord,
                 rois: Tensor, fused: Optional[Tensor]) -> Tensor:
        """(K, C, h, w) region features of the step.

        Args:
            method: The dense pipeline (its strides and scales).
            record: The step's record.
            rois: (K, 5) the regions.
            fused: (K, C, h, w) the SGFI fused RoI features of the
                regions, or ``None`` when SGFI did not fuse every region.
        """
        raise NotImplementedError


@DENSE_REGION_REPRS.register_module(name='fused_roi')
class FusedRoIRepr(DenseRegionRepr):
    """The SGFI fused RoI feature of each region (needs ``loss_sgfi`` on
    every region)."""

    def check(self, method: 'GDetKDDense') -> None:
        if method._loss_sgfi_cfg is None:
            raise ValueError(
                'Heterogeneous CKD represents the dense student\'s regions '
                'by its SGFI fused RoI feature, but loss_sgfi is None. Set '
                "loss_sgfi (loss_weight=0 keeps the fusion without its "
                "imitation term), dense_region_repr='head_tower' or "
                'loss_ckd=None.')
        if method.sgfi_regions != 'all':
            raise ValueError(
                "sgfi_regions='positive' leaves the other regions without "
                "the SGFI fused feature that dense_region_repr='fused_roi' "
                "gives CKD; use dense_region_repr='head_tower' or "
                "sgfi_regions='all'.")

    def in_channels(self, method: 'GDetKDDense') -> int:
        return method.teacher_channels

    def features(self, method: 'GDetKDDense', record: DistillRecord,
                 rois: Tensor, fused: Optional[Tensor]) -> Tensor:
        return fused


@DENSE_REGION_REPRS.register_module(name='head_tower')
class HeadTowerRepr(DenseRegionRepr):
    """The last ``bbox_head.cls_convs`` output at the cell holding each
    region's centre, on the level its size maps to
    (:func:`features_at_regions`); one vector per region."""

    record_parts = ('dense_tower', )

    def in_channels(self, method: 'GDetKDDense') -> int:
        pooled = method._region_projector_cfg.get('pooled_size', 2)
        if int(pooled) != 1:
            raise ValueError(
                "dense_region_repr='head_tower' gives one feature "
                'vector per region; set region_projector.pooled_size'
                f'=1 (got {pooled}).')
        if method.tower_finest_scale is None:
            method.tower_finest_scale = head_finest_scale(
                method.student.bbox_head)
        # one tower shared by the levels, or one per level (RTMDet's
        # separate-BN heads): the last layer's width either way
        return int(last_tower_layers(method.student.bbox_head)[-1]
                   .out_channels)

    def features(self, method: 'GDetKDDense', record: DistillRecord,
                 rois: Tensor, fused: Optional[Tensor]) -> Tensor:
        # upcast after the gather: only K vectors, not the maps
        tower = at_least_fp32(features_at_regions(
            record.student_cls_tower, rois, method.student_strides,
            method.tower_finest_scale))
        return tower[:, :, None, None]


def dense_region_repr_names() -> Tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(DENSE_REGION_REPRS.module_dict)
