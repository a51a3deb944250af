from . import adapters, capture, distillers, losses, methods  # noqa: F401
from .distillers import Distiller
from .methods import DistillMethod

__all__ = ['Distiller', 'DistillMethod']
