"""Training-time tools: hooks (loss-weight schedules, teacher evaluation)
and teacher evaluation."""
from . import hooks  # noqa: F401
from .hooks import (DistillLossWeightHook, DistillWeightSchedule,
                    TeacherEvaluationHook)
from .teacher_evaluation import (evaluate_teacher, prefix_metrics,
                                 unwrap_distiller)

__all__ = [
    'DistillLossWeightHook', 'DistillWeightSchedule',
    'TeacherEvaluationHook', 'evaluate_teacher', 'prefix_metrics',
    'unwrap_distiller'
]
