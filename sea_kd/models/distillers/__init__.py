from .adl_distiller import ADLDistiller
from .base_distiller import BaseDistiller
from .feature_imitation_distiller import FeatureImitationDistiller

__all__ = ['ADLDistiller', 'BaseDistiller', 'FeatureImitationDistiller']
