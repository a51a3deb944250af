"""Training-loop extensions: hooks registered in mmdet's ``HOOKS``."""
from .hooks import DistillLossWeightHook, DistillWeightSchedule

__all__ = ['DistillLossWeightHook', 'DistillWeightSchedule']
