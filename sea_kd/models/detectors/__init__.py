"""What sea_kd knows about each detector family: one view per family,
found by the head's class hierarchy. Everything else in ``sea_kd.models``
reads detector behaviour through these views."""
from . import (anchor_head_view, fcos_head_view, gfl_head_view,  # noqa: F401
               rtmdet_head_view, tood_head_view, yolox_head_view)
from .class_hierarchy_map import ClassHierarchyMap
from .dense_head_view import (DenseHeadView, checked_dense_view,
                              dense_head_view, detection_score_logits,
                              known_dense_heads, normalize_dense_targets,
                              register_dense_view)
from .dense_layout import (flatten_level_logits, flatten_level_maps,
                           level_priors)
from .dense_outputs import DenseHeadOutputs, DenseTargets
from .detector_kind import (BACKBONE, DENSE, QUERY, TWO_STAGE,
                            add_detector_kind, detector_kind,
                            is_backbone_teacher, is_dense_detector,
                            is_query_detector, is_two_stage_detector)
from .rcnn_view import RCNNStage, is_cascade, rcnn_stage
from .query_decoder_view import (DecoderQueries, QueryDecoderView,
                                 decoder_view_families, query_decoder_view,
                                 register_decoder_view)
from .query_head_view import (QueryHeadView, query_head_view,
                              register_query_view)

__all__ = [
    'DenseHeadView', 'register_dense_view', 'dense_head_view',
    'checked_dense_view', 'known_dense_heads', 'detection_score_logits',
    'normalize_dense_targets', 'flatten_level_logits', 'flatten_level_maps',
    'level_priors', 'DenseHeadOutputs', 'DenseTargets', 'ClassHierarchyMap',
    'DENSE', 'TWO_STAGE', 'QUERY', 'BACKBONE', 'detector_kind',
    'add_detector_kind', 'is_backbone_teacher', 'is_dense_detector',
    'is_two_stage_detector', 'is_query_detector', 'QueryHeadView',
    'query_head_view', 'register_query_view', 'DecoderQueries',
    'QueryDecoderView', 'query_decoder_view', 'register_decoder_view',
    'decoder_view_families', 'RCNNStage', 'is_cascade', 'rcnn_stage'
]
