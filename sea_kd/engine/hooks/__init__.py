from .distill_loss_weight_hook import DistillLossWeightHook
from .distill_weight_schedule import POLICIES, DistillWeightSchedule

__all__ = ['DistillLossWeightHook', 'DistillWeightSchedule', 'POLICIES']
