"""Automatic balancing of a distiller's terms (the ``balance`` option)."""
from .distill_balance import DistillBalance, build_balance, updated_factors
from .gradient_share_balance import GradientShareBalance
from .loss_ratio_balance import LossRatioBalance

__all__ = [
    'DistillBalance', 'GradientShareBalance', 'build_balance',
    'LossRatioBalance', 'updated_factors'
]
