"""Compare the training set's classes with the heads before training."""
from __future__ import annotations

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ...models.distillers.pair_checks import dataset_class_problems


class DatasetClassesError(ValueError):
    """A head predicts fewer classes than the training set has."""


@HOOKS.register_module()
class DatasetClassesCheckHook(Hook):
    """Refuse to train when a head has fewer classes than the data set.

    With 7 classes in the data set and 6-class heads, mmdet trains the 7th
    class as background without a word. Before the first iteration this hook
    compares the training set's ``metainfo['classes']`` with every head (a
    distiller's teacher and student, or the detector) and raises
    :class:`DatasetClassesError` with the message ``tools/check_pair.py``
    prints; a head with *more* classes than the data set is only logged as a
    warning (the extra classes are never trained, which may be intended).
    ``tools/train.py`` adds this hook to every run.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Check the classes once, before training starts."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        dataset = runner.train_dataloader.dataset
        classes = list((getattr(dataset, 'metainfo', None) or {}).get(
            'classes') or [])
        problems = dataset_class_problems(model, classes)
        fewer = [text for num, text in problems if num < len(classes)]
        if fewer:
            raise DatasetClassesError('\n'.join(fewer))
        for _, text in problems:
            print_log(text, logger='current', level=30)
