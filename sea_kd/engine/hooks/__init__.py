from .dataset_classes_check_hook import (DatasetClassesCheckHook,
                                         DatasetClassesError)
from .distill_loss_weight_hook import DistillLossWeightHook
from .distill_weight_schedule import POLICIES, DistillWeightSchedule
from .teacher_evaluation_hook import TeacherEvaluationHook

__all__ = [
    'DatasetClassesCheckHook', 'DatasetClassesError',
    'DistillLossWeightHook', 'DistillWeightSchedule', 'POLICIES',
    'TeacherEvaluationHook'
]
