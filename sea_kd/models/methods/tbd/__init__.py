"""TBD: the method (``tbd.py``) and its harmony score
(``harmony_score.py``)."""
from .tbd import TBD

__all__ = ['TBD']
