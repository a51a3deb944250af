"""Evaluate the distiller's teacher once per training run."""
from __future__ import annotations

import copy
import numbers
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook, LoggerHook

from ...models.distillers.random_streams import (devices_of,
                                                 random_stream_of_its_own)
from ...models.teachers import is_backbone_teacher
from ...utils.checked_choice import checked_choice
from ..teacher_evaluation import (evaluate_teacher, prefix_metrics,
                                  unwrap_distiller)

WHEN = ('first_val', 'before_train')


def _scalar(value: Any) -> Optional[float]:
    """``value`` as a float if it is a single number, else ``None``."""
    if isinstance(value, torch.Tensor):
        return float(value.item()) if value.numel() == 1 else None
    if isinstance(value, np.ndarray):
        return float(value.item()) if value.size == 1 else None
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return float(value)
    return None


@HOOKS.register_module()
class TeacherEvaluationHook(Hook):
    """Evaluate the frozen teacher on the validation set once per run.

    The teacher does not change during distillation, so its metrics are
    computed once: at the end of the first validation (``when='first_val'``,
    logged right after the student's) or before the first training iteration
    (``when='before_train'``). Later validations evaluate the student only.

    The teacher runs on the run's own validation dataloader (under
    distributed training each process runs its shard and the results of all
    processes are collected) with the distiller's data preprocessing and
    :meth:`Distiller.predict_teacher`, and is scored by a separate
    evaluator built from the run's ``val_evaluator`` config, so the
    student's evaluator and the metrics that ``CheckpointHook(save_best=...)``
    reads are untouched.

    The metrics are prefixed with ``prefix`` (``teacher/coco/bbox_mAP``),
    written to the log, to the message hub (scalars) and to the visualizer's
    backends (``scalars.json`` of ``LocalVisBackend``, TensorBoard...) with
    the step the student's validation metrics use. They are saved in
    checkpoints with the message hub, so a resumed run does not evaluate the
    teacher again.

    Args:
        enable: ``False`` turns the hook off (e.g. from ``--cfg-options``).
        when: ``'first_val'`` or ``'before_train'``.
        num_batches: Number of validation batches (per process) for a quick
            check; ``None`` (default) for the whole validation set. With a
            part of the set, ``CocoMetric`` scores only the images run.
        evaluator: Evaluator config to use instead of the run's
            ``val_evaluator`` (needed when the runner was built without a
            config).
        prefix: Prefix of the logged metric names.
    """

    priority = 'LOW'  # after LoggerHook: the student's val line comes first

    def __init__(self,
                 enable: bool = True,
                 when: str = 'first_val',
                 num_batches: Optional[int] = None,
                 evaluator: Optional[Union[dict, list]] = None,
                 prefix: str = 'teacher') -> None:
        checked_choice('TeacherEvaluationHook: when', when, WHEN)
        if num_batches is not None and (not isinstance(num_batches, int)
                                        or num_batches < 1):
            raise ValueError('TeacherEvaluationHook: num_batches must be a '
                             f'positive int or None, got {num_batches!r}.')
        if not prefix or '/' in prefix or prefix.startswith(
                ('train', 'val', 'test')):
            # LogProcessor re-logs every message-hub scalar whose name
            # starts with the mode ('train', 'val', 'test')
            raise ValueError(
                'TeacherEvaluationHook: prefix must be a non-empty name '
                "without '/' that does not start with 'train', 'val' or "
                f"'test', got {prefix!r}.")
        self.enable = enable
        self.when = when
        self.num_batches = num_batches
        self.evaluator = evaluator
        self.prefix = prefix
        self.metrics: Optional[Dict[str, Any]] = None
        self._training = False

    # ------------------------------------------------------------------ hooks
    def before_run(self, runner) -> None:
        """Fail early if the model is not a distiller, or its teacher is a
        backbone (which predicts nothing to evaluate)."""
        if self.enable and is_backbone_teacher(
                unwrap_distiller(runner.model).teacher):
            raise ValueError(
                f'{type(self).__name__} evaluates the teacher\'s detections, '
                'and a BackboneTeacher has no detection head; remove the '
                'hook or set enable=False.')

    def before_train(self, runner) -> None:
        """Evaluate here with ``when='before_train'``; check the set-up."""
        self._training = True
        if not self.enable:
            return
        if runner.val_loop is None:
            raise ValueError(
                'TeacherEvaluationHook evaluates the teacher on the '
                'validation set, but this run has no validation loop; set '
                'val_dataloader, val_evaluator and val_cfg, or remove the '
                'hook.')
        if self.when == 'before_train':
            self._evaluate_once(runner)

    def after_train(self, runner) -> None:
        self._training = False

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Evaluate here with ``when='first_val'`` (first validation only).

        ``metrics`` (the student's) are neither read nor changed.
        """
        if self.enable and self.when == 'first_val':
            self._evaluate_once(runner)

    # ------------------------------------------------------------------ work
    def _already_evaluated(self, runner) -> bool:
        if self.metrics is not None:
            return True
        # restored from a resumed checkpoint's message hub
        start = f'{self.prefix}/'
        return any(key.startswith(start)
                   for key in runner.message_hub.log_scalars)

    def _evaluator_cfg(self, runner) -> Union[dict, list]:
        cfg = self.evaluator if self.evaluator is not None else \
            runner.cfg.get('val_evaluator')
        if cfg is None:
            raise ValueError(
                'TeacherEvaluationHook builds its own evaluator from the '
                "run's `val_evaluator` config, which this runner does not "
                'have (it was built without a config); pass '
                "evaluator=dict(type='CocoMetric', ...) to the hook.")
        return copy.deepcopy(cfg)

    def _evaluate_once(self, runner) -> None:
        if self._already_evaluated(runner):
            return
        val_loop = runner.val_loop
        evaluator = runner.build_evaluator(self._evaluator_cfg(runner))
        loader = val_loop.dataloader
        fresh = getattr(loader, '_iterator', None) is None
        # the loader draws its workers' base seed: on a stream of its own,
        # so the student's later draws are those of the student alone
        with random_stream_of_its_own(offset=4,
                                      devices=devices_of(runner.model)):
            metrics = evaluate_teacher(
                runner.model, loader, evaluator,
                num_batches=self.num_batches,
                fp16=bool(getattr(val_loop, 'fp16', False)))
        if fresh and getattr(loader, '_iterator', None) is not None:
            # a persistent iterator made here would spare the student's
            # first validation the draw it makes alone
            loader._iterator._shutdown_workers()
            loader._iterator = None
        self.metrics = prefix_metrics(metrics, self.prefix)
        self._log(runner, len(loader))

    def _log(self, runner, loader_len: int) -> None:
        batches = loader_len if self.num_batches is None else min(
            self.num_batches, loader_len)
        scalars = {}
        for key, value in self.metrics.items():
            number = _scalar(value)
            if number is None:
                runner.message_hub.update_info(key, value)
            else:
                scalars[key] = number
                runner.message_hub.update_scalar(key, number)
        text = '  '.join(f'{key}: {value}'
                         for key, value in self.metrics.items()) or (
            'no metrics (CocoMetric gives none when the teacher detects '
            'nothing above its score threshold)')
        runner.logger.info(
            f'Teacher of {type(unwrap_distiller(runner.model)).__name__} on '
            f'{batches}/{loader_len} validation batches: {text}')
        logger_hook = next(
            (h for h in runner.hooks if isinstance(h, LoggerHook)), None)
        # the step LoggerHook gives the student's validation metrics (0
        # outside training, where the train loop may not be built)
        step = 0
        if self._training:
            by_epoch = logger_hook is None or logger_hook.log_metric_by_epoch
            step = runner.epoch if by_epoch else runner.iter
        runner.visualizer.add_scalars(
            scalars, step=step,
            file_path=getattr(logger_hook, 'json_log_path', None))
