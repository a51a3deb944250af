"""The kind of a detector: dense (one-stage), two-stage (R-CNN) or query
(DETR family), found by its class hierarchy."""
from __future__ import annotations

from typing import Optional

from mmdet.models.detectors import (DetectionTransformer, SingleStageDetector,
                                    TwoStageDetector)
from torch import nn

from .class_hierarchy_map import ClassHierarchyMap

#: one-stage detectors: a neck and a dense head (RetinaNet, FCOS, ATSS, GFL,
#: RTMDet, YOLOX, ...)
DENSE = 'dense'
#: R-CNNs: a region proposal network and a region head (Faster R-CNN, Mask
#: R-CNN, Cascade R-CNN, ...)
TWO_STAGE = 'two_stage'
#: DETR-family detectors: a transformer and a query head (DETR, Deformable
#: DETR, DINO, ...)
QUERY = 'query'
#: a backbone alone as a teacher, no head (``BackboneTeacher``, which
#: :mod:`sea_kd.models.teachers` registers with :func:`add_detector_kind`)
BACKBONE = 'backbone'

_KINDS = ClassHierarchyMap('kind')
_KINDS.add(SingleStageDetector, DENSE)
_KINDS.add(TwoStageDetector, TWO_STAGE)
_KINDS.add(DetectionTransformer, QUERY)


def detector_kind(detector: nn.Module) -> Optional[str]:
    """:data:`DENSE`, :data:`TWO_STAGE`, :data:`QUERY`, or ``None`` for a
    detector of no known kind."""
    return _KINDS.lookup(detector)


def is_dense_detector(detector: nn.Module) -> bool:
    """Whether ``detector`` is a one-stage detector (mmdet's
    ``SingleStageDetector``)."""
    return detector_kind(detector) == DENSE


def is_two_stage_detector(detector: nn.Module) -> bool:
    """Whether ``detector`` is an R-CNN (mmdet's ``TwoStageDetector``)."""
    return detector_kind(detector) == TWO_STAGE


def is_query_detector(detector: nn.Module) -> bool:
    """Whether ``detector`` is a DETR-family detector (mmdet's
    ``DetectionTransformer``: DETR, Deformable DETR, DINO, ...)."""
    return detector_kind(detector) == QUERY


def is_backbone_teacher(model: nn.Module) -> bool:
    """Whether ``model`` is a backbone alone (``BackboneTeacher``): feature
    maps, no head, no classes."""
    return detector_kind(model) == BACKBONE


def add_detector_kind(cls: type, kind: str) -> None:
    """Register ``cls`` (and its subclasses) as a model of ``kind``."""
    _KINDS.add(cls, kind)
