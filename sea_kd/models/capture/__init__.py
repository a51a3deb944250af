from ..detectors import is_query_detector, normalize_dense_targets
from .detector_capture import (check_parts, shared_fc_tap,
                               student_loss_with_record,
                               teacher_dense_forward, teacher_region_forward,
                               teacher_roi_forward)
from .method_tap import MethodTap, RecordedCall
from .module_taps import (ModuleTaps, checked_module_paths, module_at,
                          tapped_tensor)
from .query_outputs import (query_outputs, teacher_query_forward,
                            uses_sigmoid_classes)
from .record import (RECORD_PARTS, DenseHeadOutputs, DenseTargets,
                     DistillRecord, QueryOutputs, RoIRecord)

__all__ = [
    'MethodTap', 'RecordedCall', 'ModuleTaps', 'module_at',
    'checked_module_paths', 'tapped_tensor', 'RECORD_PARTS', 'DenseHeadOutputs',
    'DenseTargets', 'DistillRecord', 'RoIRecord', 'normalize_dense_targets',
    'check_parts', 'student_loss_with_record', 'teacher_dense_forward',
    'teacher_roi_forward', 'teacher_region_forward', 'shared_fc_tap',
    'QueryOutputs', 'is_query_detector', 'query_outputs',
    'teacher_query_forward', 'uses_sigmoid_classes'
]
