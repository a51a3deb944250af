from .distill_loss_controls import NONFINITE_MODES, DistillLossControlsMixin
from .distiller import Distiller
from .nonfinite_diagnosis import NonFiniteDistillLossError
from .single_method_distillers import (ADLDistiller,
                                       FeatureImitationDistiller,
                                       GDetKDDistiller, SEADistiller,
                                       SingleMethodDistiller, TBDDistiller)

__all__ = [
    'Distiller', 'SingleMethodDistiller', 'ADLDistiller', 'SEADistiller',
    'TBDDistiller', 'GDetKDDistiller', 'FeatureImitationDistiller',
    'DistillLossControlsMixin', 'NONFINITE_MODES', 'NonFiniteDistillLossError'
]
