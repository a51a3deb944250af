"""The factor a distillation loss weight is multiplied by, step by step."""
from __future__ import annotations

import math
from typing import Optional, Sequence

from ...models.distillers.distill_loss_controls import check_factor
from ...utils.checked_choice import checked_choice

#: Policies of :class:`DistillWeightSchedule`.
POLICIES = ('constant', 'linear', 'cosine', 'step')


def _check_step(value, name: str) -> None:
    if value is not None and (not isinstance(value, int)
                              or isinstance(value, bool) or value < 0):
        raise ValueError(f'{name} must be a non-negative integer (an '
                         f'iteration or epoch index), got {value!r}.')


class DistillWeightSchedule:
    """A factor of the distillation loss weights as a function of the step.

    The step ``t`` is the 0-based iteration (``runner.iter``) or epoch
    (``runner.epoch``) index; ``max_steps`` the run's number of iterations or
    epochs. The factor is::

        f(t) = factor · w(t) · p(t)    for t < stop_at,   0 from stop_at on

    - warm-up ``w``: ``warmup_start_factor + (1 − warmup_start_factor) ·
      t / warmup`` for ``t < warmup``, then 1 (no warm-up when
      ``warmup=0``);
    - policy ``p``, with ``b = begin`` (default ``warmup``, so that a decay
      follows the warm-up) and ``e = end`` (default ``max_steps``):

      - ``constant``: 1;
      - ``linear``: 1 until ``b``, then linearly to ``end_factor`` at ``e``,
        ``end_factor`` afterwards;
      - ``cosine``: 1 until ``b``, then
        ``end_factor + (1 − end_factor) · (1 + cos(π (t − b) / (e − b))) / 2``
        until ``e``, ``end_factor`` afterwards;
      - ``step``: ``gamma ** (number of milestones <= t)``.

    ``stop_at`` is counted like the log's 1-based iterations: with
    ``stop_at=N`` the first ``N`` iterations (epochs) distil and the factor
    is 0 from the ``N+1``-th on.

    Args:
        policy: One of :data:`POLICIES`.
        factor: Peak factor (1.0).
        warmup: Length of the linear warm-up in steps (0: none).
        warmup_start_factor: Factor of ``w`` at step 0 (0.0).
        begin: Step at which a ``linear``/``cosine`` decay starts.
        end: Step at which it reaches ``end_factor``.
        end_factor: Final factor of a ``linear``/``cosine`` decay (0.0).
        milestones: Steps at which a ``step`` policy multiplies by ``gamma``.
        gamma: Multiplier of a ``step`` policy (0.1).
        stop_at: Steps after which distillation stops (factor 0); ``None``:
            never.
    """

    def __init__(self,
                 policy: str = 'constant',
                 factor: float = 1.0,
                 warmup: int = 0,
                 warmup_start_factor: float = 0.0,
                 begin: Optional[int] = None,
                 end: Optional[int] = None,
                 end_factor: Optional[float] = None,
                 milestones: Optional[Sequence[int]] = None,
                 gamma: Optional[float] = None,
                 stop_at: Optional[int] = None) -> None:
        checked_choice('policy', policy, POLICIES)
        decay = policy in ('linear', 'cosine')
        for name, value in (('begin', begin), ('end', end),
                            ('end_factor', end_factor)):
            if value is not None and not decay:
                raise ValueError(f'{name} applies to the linear and cosine '
                                 f'policies only, not to {policy!r}.')
        for name, value in (('milestones', milestones), ('gamma', gamma)):
            if value is not None and policy != 'step':
                raise ValueError(f'{name} applies to the step policy only, '
                                 f'not to {policy!r}.')
        if policy == 'step' and not milestones:
            raise ValueError("The step policy needs `milestones` (steps at "
                             'which the factor is multiplied by `gamma`).')
        check_factor(factor, 'factor')
        _check_step(warmup, 'warmup')
        check_factor(warmup_start_factor, 'warmup_start_factor')
        _check_step(begin, 'begin')
        _check_step(end, 'end')
        _check_step(stop_at, 'stop_at')
        if begin is not None and end is not None and end <= begin:
            raise ValueError(f'end ({end}) must be greater than begin '
                             f'({begin}).')
        end_factor = 0.0 if end_factor is None else end_factor
        check_factor(end_factor, 'end_factor')
        gamma = 0.1 if gamma is None else gamma
        check_factor(gamma, 'gamma')
        for m in milestones or ():
            _check_step(m, 'every milestone')
        self.policy = policy
        self.factor = float(factor)
        self.warmup = warmup
        self.warmup_start_factor = float(warmup_start_factor)
        self.begin = begin
        self.end = end
        self.end_factor = float(end_factor)
        self.milestones = sorted(milestones or ())
        self.gamma = float(gamma)
        self.stop_at = stop_at

    def __call__(self, step: int, max_steps: Optional[int] = None) -> float:
        """The factor at ``step`` of a run of ``max_steps`` steps.

        Args:
            step: 0-based iteration or epoch index.
            max_steps: Length of the run; needed by a ``linear``/``cosine``
                decay without ``end``.

        Returns:
            The factor, >= 0.
        """
        if self.stop_at is not None and step >= self.stop_at:
            return 0.0
        value = self.factor
        if step < self.warmup:
            s = self.warmup_start_factor
            value *= s + (1.0 - s) * step / self.warmup
        return value * self._policy(step, max_steps)

    def _policy(self, step: int, max_steps: Optional[int]) -> float:
        if self.policy == 'constant':
            return 1.0
        if self.policy == 'step':
            passed = sum(1 for m in self.milestones if m <= step)
            return self.gamma**passed
        begin, end = self.decay_range(max_steps)
        if step <= begin:
            return 1.0
        if step >= end:
            return self.end_factor
        progress = (step - begin) / (end - begin)
        if self.policy == 'linear':
            return 1.0 + (self.end_factor - 1.0) * progress
        return self.end_factor + (1.0 - self.end_factor) * (
            1.0 + math.cos(math.pi * progress)) / 2.0

    def decay_range(self, max_steps: Optional[int]) -> tuple:
        """``(begin, end)`` of a ``linear``/``cosine`` decay.

        Raises:
            ValueError: If ``end`` is unset and ``max_steps`` unknown, or the
                range is empty.
        """
        begin = self.warmup if self.begin is None else self.begin
        end = self.end if self.end is not None else max_steps
        if end is None:
            raise ValueError(f'The {self.policy} policy needs `end` or the '
                             'length of the run.')
        if end <= begin:
            raise ValueError(
                f'The {self.policy} decay would run from step {begin} to '
                f'step {end}, an empty range; set `end` beyond `begin` '
                '(which defaults to `warmup`) or lengthen the run.')
        return begin, end

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(policy={self.policy!r}, '
                f'factor={self.factor}, warmup={self.warmup}, '
                f'stop_at={self.stop_at})')
