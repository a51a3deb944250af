"""Training-time tools: hooks (loss-weight schedules, teacher evaluation),
teacher evaluation and the pair report."""
from . import hooks  # noqa: F401
from .hooks import (DistillLossWeightHook, DistillWeightSchedule,
                    TeacherEvaluationHook)
from .pair_report import PairCheckError, build_pair_report, format_pair_report
from .teacher_evaluation import (evaluate_teacher, prefix_metrics,
                                 unwrap_distiller)

__all__ = [
    'DistillLossWeightHook', 'DistillWeightSchedule',
    'TeacherEvaluationHook', 'PairCheckError', 'build_pair_report',
    'evaluate_teacher', 'format_pair_report', 'prefix_metrics',
    'unwrap_distiller'
]
