from . import detectors  # noqa: F401  (first: the ground floor)
from . import (adapters, balance, capture, distillers, losses,  # noqa: F401
               methods, teachers)
from .distillers import Distiller
from .methods import DistillMethod

__all__ = ['Distiller', 'DistillMethod']
