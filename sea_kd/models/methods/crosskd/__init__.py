"""CrossKD: the method (``crosskd.py``) and the teacher head's last layers
run on given features (``teacher_head_tail.py``)."""
from .crosskd import CrossKD

__all__ = ['CrossKD']
