from .env_check import check_environment
from .config_loading import load_model_cfg
from .checkpoint_loading import load_state_dict_strict, read_state_dict
from .student_export import export_student
from .training_curves import load_scalars, plot_losses, plot_metric

__all__ = [
    'check_environment', 'load_model_cfg', 'load_state_dict_strict',
    'read_state_dict', 'export_student', 'load_scalars', 'plot_losses',
    'plot_metric'
]
