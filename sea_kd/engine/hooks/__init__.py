from .teacher_evaluation_hook import TeacherEvaluationHook

__all__ = ['TeacherEvaluationHook']
