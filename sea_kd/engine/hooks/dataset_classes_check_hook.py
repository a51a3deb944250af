"""Compare the training set's classes with the heads and the teacher
checkpoint before training."""
from __future__ import annotations

from typing import List

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ...models.detectors.pair_checks import (class_identity_problem,
                                             dataset_class_problems,
                                             teacher_checkpoint_classes)
from ...utils.model_wrappers import unwrap_model


class DatasetClassesError(ValueError):
    """A head predicts fewer classes than the training set has, or the
    teacher checkpoint was trained on other classes or another order."""


@HOOKS.register_module()
class DatasetClassesCheckHook(Hook):
    """Refuse to train when the heads or the teacher do not know the data
    set's classes.

    With 7 classes in the data set and 6-class heads, mmdet trains the 7th
    class as background without a word. Before the first iteration this hook
    compares the training set's ``metainfo['classes']`` with every head (a
    distiller's teacher and student, or the detector) and raises
    :class:`DatasetClassesError` with the message ``tools/check_pair.py``
    prints; a head with *more* classes than the data set is only logged as a
    warning (the extra classes are never trained, which may be intended).

    A distiller's teacher checkpoint is also compared by name and order:
    when its ``meta['dataset_meta']['classes']`` (or mmdet 2.x's
    ``meta['CLASSES']``) differs from the data set's classes, the teacher's
    labels mean other classes than the student's, and the hook raises with
    the checkpoint, the first difference and the fix. A checkpoint without
    recorded classes is not compared. ``tools/train.py`` adds this hook to
    every run.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Check the classes once, before training starts."""
        model = unwrap_model(runner.model)
        dataset = runner.train_dataloader.dataset
        classes = list((getattr(dataset, 'metainfo', None) or {}).get(
            'classes') or [])
        problems = dataset_class_problems(model, classes)
        errors: List[str] = [
            text for num, text in problems if num < len(classes)]
        trained = teacher_checkpoint_classes(model) if classes else None
        identity = class_identity_problem(
            trained, classes, getattr(model, 'teacher_ckpt', ''))
        if identity:
            errors.append(identity)
        if errors:
            raise DatasetClassesError('\n'.join(errors))
        for _, text in problems:
            print_log(text, logger='current', level=30)
