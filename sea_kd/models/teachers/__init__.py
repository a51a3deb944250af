"""Teachers that are not detectors: a backbone alone."""
from ..detectors.detector_kind import is_backbone_teacher
from .backbone_teacher import IMAGENET_PREPROCESSOR, BackboneTeacher

__all__ = ['BackboneTeacher', 'IMAGENET_PREPROCESSOR', 'is_backbone_teacher']
