from .adaptive_distillation_loss import ADLoss
from .feature_mse_loss import FeatureMSELoss

__all__ = ['ADLoss', 'FeatureMSELoss']
