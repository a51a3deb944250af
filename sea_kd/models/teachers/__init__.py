"""Teachers that are not detectors: a backbone alone."""
from .backbone_teacher import (IMAGENET_PREPROCESSOR, BackboneTeacher,
                               is_backbone_teacher)

__all__ = ['BackboneTeacher', 'IMAGENET_PREPROCESSOR', 'is_backbone_teacher']
