from .adaptive_distillation_loss import ADLoss
from .feature_mse_loss import FeatureMSELoss
from .masked_feature_mse_loss import MaskedFeatureMSELoss
from .harmonious_distillation_loss import HDLoss  # noqa: F401
from .task_decoupled_feature_loss import TFDLoss  # noqa: F401
from .sea_loss import SEALoss  # noqa: F401
from .sgfi_loss import SGFILoss  # noqa: F401
from .ckd_loss import CKDLoss  # noqa: F401
from .rcnn_prediction_kd_loss import ClassAwareRegKDLoss  # noqa: F401
from .rcnn_prediction_kd_loss import RCNNLogitKDLoss  # noqa: F401
from .pearson_feature_loss import PKDLoss
from .channel_wise_divergence_loss import CWDLoss
from .kd_quality_focal_loss import KDQualityFocalLoss
from .distribution_kl_loss import DistributionKLLoss
from .query_kd_loss import QueryKDLoss

__all__ = ['ADLoss', 'FeatureMSELoss', 'MaskedFeatureMSELoss', 'PKDLoss', 'CWDLoss',
           'KDQualityFocalLoss', 'DistributionKLLoss', 'QueryKDLoss']
