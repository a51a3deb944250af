from .feature_mse_loss import FeatureMSELoss

__all__ = ['FeatureMSELoss']
