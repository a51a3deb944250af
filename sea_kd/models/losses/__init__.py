from .adaptive_distillation_loss import ADLoss
from .channel_wise_divergence_loss import CWDLoss
from .ckd_loss import CKDLoss
from .cosine_feature_loss import CosineFeatureLoss
from .distribution_kl_loss import DistributionKLLoss
from .feature_mse_loss import FeatureMSELoss
from .harmonious_distillation_loss import HDLoss
from .kd_detr_loss import KDDETRLoss
from .kd_quality_focal_loss import KDQualityFocalLoss
from .masked_feature_mse_loss import MaskedFeatureMSELoss
from .pearson_feature_loss import PKDLoss
from .query_kd_loss import QueryKDLoss
from .rcnn_prediction_kd_loss import ClassAwareRegKDLoss, RCNNLogitKDLoss
from .sea_loss import SEALoss
from .sgfi_loss import SGFILoss
from .task_decoupled_feature_loss import TFDLoss

__all__ = [
    'ADLoss', 'CWDLoss', 'CKDLoss', 'CosineFeatureLoss', 'DistributionKLLoss',
    'FeatureMSELoss', 'HDLoss', 'KDDETRLoss', 'KDQualityFocalLoss',
    'MaskedFeatureMSELoss', 'PKDLoss',
    'QueryKDLoss', 'ClassAwareRegKDLoss', 'RCNNLogitKDLoss', 'SEALoss',
    'SGFILoss', 'TFDLoss'
]
