"""HMLD: the method (``hmld.py``) and its query matching
(``query_matching.py``)."""
from .hmld import HMLD

__all__ = ['HMLD']
