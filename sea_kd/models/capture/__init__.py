from ..detectors import is_query_detector, normalize_dense_targets
from . import record_parts  # noqa: F401  (registers the built-in parts)
from .detector_capture import (run_teacher_parts, student_loss_into,
                               student_loss_with_record,
                               teacher_dense_forward)
from .method_tap import MethodTap, RecordedCall
from .module_taps import (ModuleTaps, checked_module_paths, module_at,
                          tapped_tensor)
from .query_outputs import (query_outputs, teacher_query_forward,
                            uses_sigmoid_classes)
from .record import (DenseHeadOutputs, DenseTargets, DistillRecord,
                     QueryOutputs, RoIRecord)
from .record_part import (RECORD_PARTS, RecordPart, check_parts,
                          ordered_parts, record_part_names,
                          register_record_part, teacher_module_hint,
                          teacher_modules)
from .roi_forward import (shared_fc_tap, teacher_region_forward,
                          teacher_roi_forward)

__all__ = [
    'MethodTap', 'RecordedCall', 'ModuleTaps', 'module_at',
    'checked_module_paths', 'tapped_tensor', 'DenseHeadOutputs',
    'DenseTargets', 'DistillRecord', 'RoIRecord', 'normalize_dense_targets',
    'RECORD_PARTS', 'RecordPart', 'register_record_part', 'record_part_names',
    'ordered_parts', 'check_parts', 'teacher_modules', 'teacher_module_hint',
    'student_loss_into', 'student_loss_with_record', 'run_teacher_parts',
    'teacher_dense_forward', 'teacher_roi_forward', 'teacher_region_forward',
    'shared_fc_tap', 'QueryOutputs', 'is_query_detector', 'query_outputs',
    'teacher_query_forward', 'uses_sigmoid_classes'
]
