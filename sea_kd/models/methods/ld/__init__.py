"""LD: the method (``ld.py``) and its valuable localization region
(``valuable_localization_region.py``)."""
from .ld import LD

__all__ = ['LD']
