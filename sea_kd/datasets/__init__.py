"""Data sets and transforms shipped with sea_kd."""

from .alternating_source_sampler import AlternatingSourceSampler
from .pseudo_labels import detections_to_coco
from .semi_supervised_split import split_labeled_unlabeled
from .synthetic_coco import (SHAPE_CLASSES, SYNTHETIC_CLASSES,
                             generate_synthetic_coco)
from .transforms import MarkUnlabeled

__all__ = [
    'AlternatingSourceSampler',
    'SHAPE_CLASSES', 'SYNTHETIC_CLASSES', 'generate_synthetic_coco',
    'split_labeled_unlabeled',
    'detections_to_coco', 'MarkUnlabeled'
]
