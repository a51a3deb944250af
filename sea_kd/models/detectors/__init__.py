"""What sea_kd knows about each detector family: one view per family,
found by the head's class hierarchy. Everything else in ``sea_kd.models``
reads detector behaviour through these views."""
from . import (anchor_head_view, fcos_head_view, gfl_head_view,  # noqa: F401
               rtmdet_head_view, yolox_head_view)
from .dense_head_view import (DenseHeadView, checked_dense_view,
                              dense_head_view, detection_score_logits,
                              known_dense_heads, normalize_dense_targets,
                              register_dense_view)
from .dense_layout import (flatten_level_logits, flatten_level_maps,
                           level_priors)
from .dense_outputs import DenseHeadOutputs, DenseTargets

__all__ = [
    'DenseHeadView', 'register_dense_view', 'dense_head_view',
    'checked_dense_view', 'known_dense_heads', 'detection_score_logits',
    'normalize_dense_targets', 'flatten_level_logits', 'flatten_level_maps',
    'level_priors', 'DenseHeadOutputs', 'DenseTargets'
]
