"""Training-time tools: hooks, teacher evaluation, the pair report."""
from . import hooks  # noqa: F401
from .hooks import TeacherEvaluationHook
from .pair_report import PairCheckError, build_pair_report, format_pair_report
from .teacher_evaluation import (evaluate_teacher, prefix_metrics,
                                 unwrap_distiller)

__all__ = [
    'TeacherEvaluationHook', 'PairCheckError', 'build_pair_report',
    'evaluate_teacher', 'format_pair_report', 'prefix_metrics',
    'unwrap_distiller'
]
