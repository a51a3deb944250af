"""A hook that scales a distiller's distillation losses along training."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from ...models.distillers import Distiller
from ...utils.model_wrappers import unwrap_model
from .distill_weight_schedule import DistillWeightSchedule

#: Message-hub key (``train/<key>``) of the global factor.
FACTOR_KEY = 'distill_weight_factor'


@HOOKS.register_module()
class DistillLossWeightHook(Hook):
    """Scale every distillation loss of a sea_kd distiller by a schedule.

    Before each training iteration the hook computes the factor of the
    current iteration (``by_epoch=False``) or epoch (``by_epoch=True``) with
    a :class:`DistillWeightSchedule` and hands it to
    :meth:`Distiller.set_distill_loss_scale`, which multiplies each
    ``loss_<method>_<term>`` by it. Once the factor is 0 (``stop_at``), the
    distiller skips the teacher and the distillation losses. The factor is
    logged as ``distill_weight_factor`` (and ``distill_weight_factor_<term>``
    per term schedule). It is a function of ``runner.iter`` / ``runner.epoch``
    alone, so a resumed run continues with the right value.

    Example::

        custom_hooks = [
            dict(type='DistillLossWeightHook', by_epoch=False,
                 warmup=500, policy='cosine', end_factor=0.1,
                 stop_at=9000)]

    Args:
        by_epoch: Count steps in epochs (with an epoch-based train loop) or
            in iterations, like mmengine's parameter schedulers.
        policy, factor, warmup, warmup_start_factor, begin, end, end_factor,
        milestones, gamma, stop_at: The global schedule, see
            :class:`DistillWeightSchedule`; ``end`` of a decay defaults to
            the run's ``max_iters`` / ``max_epochs``.
        term_schedules: Optional per-method and per-term schedules,
            ``{key: dict(...)}`` with the same options as the global
            schedule; ``key`` is a method name (``'fi'``: all its terms), a
            loss name (``'loss_sea_rel'``), ``'<method>_<term>'``
            (``'sea_rel'``) or a bare term name (``'rel'``, when one method
            alone has it). A term's factor is the global factor times every
            factor whose key matches it.
    """

    priority = 'NORMAL'

    def __init__(self,
                 by_epoch: bool = True,
                 policy: str = 'constant',
                 factor: float = 1.0,
                 warmup: int = 0,
                 warmup_start_factor: float = 0.0,
                 begin: Optional[int] = None,
                 end: Optional[int] = None,
                 end_factor: Optional[float] = None,
                 milestones: Optional[Sequence[int]] = None,
                 gamma: Optional[float] = None,
                 stop_at: Optional[int] = None,
                 term_schedules: Optional[Dict[str, dict]] = None) -> None:
        name = type(self).__name__
        try:
            self.schedule = DistillWeightSchedule(
                policy=policy, factor=factor, warmup=warmup,
                warmup_start_factor=warmup_start_factor, begin=begin,
                end=end, end_factor=end_factor, milestones=milestones,
                gamma=gamma, stop_at=stop_at)
        except ValueError as err:
            raise ValueError(f'{name}: {err}') from err
        self.term_schedules = {}
        for term, cfg in (term_schedules or {}).items():
            if not isinstance(cfg, dict):
                raise TypeError(f'{name}: term_schedules[{term!r}] must be a '
                                f'dict of schedule options, got {cfg!r}.')
            try:
                self.term_schedules[term] = DistillWeightSchedule(**cfg)
            except (TypeError, ValueError) as err:
                raise type(err)(f'{name}: term_schedules[{term!r}]: '
                                f'{err}') from err
        self.by_epoch = by_epoch
        self._announced_stop = False

    # ---------------------------------------------------------------- helpers
    def _distiller(self, runner) -> Distiller:
        model = unwrap_model(runner.model)
        if not isinstance(model, Distiller):
            raise TypeError(
                f'{type(self).__name__} scales the distillation losses of a '
                f'sea_kd distiller, but the model is a '
                f'{type(model).__name__}. Use the hook only with sea_kd '
                "distillers (type='Distiller') or "
                'remove it from custom_hooks.')
        return model

    def _step_and_length(self, runner) -> tuple:
        if self.by_epoch:
            return runner.epoch, runner.max_epochs
        return runner.iter, runner.max_iters

    def factors(self, step: int, max_steps: Optional[int]) -> tuple:
        """Global factor and per-term factors at ``step``.

        Args:
            step: 0-based iteration or epoch index.
            max_steps: The run's number of iterations or epochs.

        Returns:
            ``(factor, {term: term_factor})``.
        """
        return self.schedule(step, max_steps), {
            term: schedule(step, max_steps)
            for term, schedule in self.term_schedules.items()
        }

    # ------------------------------------------------------------------ hooks
    def before_train(self, runner) -> None:
        """Check the model and the train loop; validate the schedules."""
        self._distiller(runner)
        if self.by_epoch and isinstance(runner.train_loop,
                                        IterBasedTrainLoop):
            raise ValueError(
                f'{type(self).__name__} has by_epoch=True but the train loop '
                'is iteration-based (IterBasedTrainLoop); set by_epoch=False '
                'and give warmup/begin/end/milestones/stop_at in '
                'iterations.')
        _, length = self._step_and_length(runner)
        try:
            self.factors(0, length)
        except ValueError as err:
            raise ValueError(f'{type(self).__name__}: {err}') from err

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Set and log the factors of the current iteration or epoch."""
        step, length = self._step_and_length(runner)
        factor, term_factors = self.factors(step, length)
        self._distiller(runner).set_distill_loss_scale(factor, term_factors)
        hub = runner.message_hub
        hub.update_scalar(f'train/{FACTOR_KEY}', factor)
        for term, value in term_factors.items():
            hub.update_scalar(f'train/{FACTOR_KEY}_{term}', value)
        if factor == 0 and self.schedule.stop_at is not None \
                and step >= self.schedule.stop_at \
                and not self._announced_stop:
            self._announced_stop = True
            unit = 'epoch' if self.by_epoch else 'iteration'
            print_log(
                f'{type(self).__name__}: distillation stopped after '
                f'{self.schedule.stop_at} {unit}s (stop_at); the student '
                'trains alone and the teacher no longer runs.',
                logger='current')
