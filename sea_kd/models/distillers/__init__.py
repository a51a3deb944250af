from .adl_distiller import ADLDistiller
from .base_distiller import BaseDistiller
from .distill_loss_controls import NONFINITE_MODES, DistillLossControlsMixin
from .feature_imitation_distiller import FeatureImitationDistiller
from .tbd_distiller import TBDDistiller  # noqa: F401
from .sea_distiller import SEADistiller  # noqa: F401
from .gdetkd_distiller import GDetKDDistiller  # noqa: F401
from .nonfinite_diagnosis import NonFiniteDistillLossError

__all__ = [
    'ADLDistiller', 'BaseDistiller', 'FeatureImitationDistiller',
    'DistillLossControlsMixin', 'NONFINITE_MODES', 'NonFiniteDistillLossError'
]
