from .env_check import check_environment
from .config_loading import load_model_cfg
from .checkpoint_loading import (check_runner_checkpoint,
                                 load_state_dict_strict, read_state_dict)
from .resume_checkpoint import checkpoint_problem, latest_intact_checkpoint
from .student_export import export_student
from .work_dir_lock import (UnsafeLockFileError, WorkDirBusyError,
                            work_dir_lock)

__all__ = [
    'check_environment', 'check_runner_checkpoint', 'load_model_cfg',
    'load_state_dict_strict', 'read_state_dict', 'export_student',
    'checkpoint_problem', 'latest_intact_checkpoint', 'UnsafeLockFileError',
    'WorkDirBusyError', 'work_dir_lock'
]
