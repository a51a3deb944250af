"""Data sets and transforms shipped with sea_kd."""

from .alternating_source_sampler import AlternatingSourceSampler
from .pseudo_labels import detections_to_coco
from .semi_supervised_split import split_labeled_unlabeled
from .transforms import MarkUnlabeled

__all__ = [
    'AlternatingSourceSampler', 'split_labeled_unlabeled',
    'detections_to_coco', 'MarkUnlabeled'
]
