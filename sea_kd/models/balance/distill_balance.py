"""The base class of the distiller's automatic balancing of its terms."""
from __future__ import annotations

import inspect
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from torch import Tensor, nn

#: How terms are grouped for balancing: one factor per method, or per term.
GROUPINGS = ('method', 'term')


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value < 1:
        raise ValueError(
            f'Balance {name} must be a share strictly between 0 and 1 (0.1: '
            f'the distillation terms carry a tenth of the signal), got '
            f'{value!r}.')
    return float(value)


def _check_positive(name: str, value, above: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= above:
        raise ValueError(f'Balance {name} must be a finite number > {above}, '
                         f'got {value!r}.')
    return float(value)


def student_detection_loss(losses: Mapping[str, object]) -> Tensor:
    """The student's total detection loss as mmengine sums it: every entry
    whose name contains ``'loss'`` (lists summed)."""
    parts = [
        torch.stack([v.sum() for v in value]).sum()
        if isinstance(value, (list, tuple)) else value.sum()
        for key, value in losses.items() if 'loss' in key
    ]
    return torch.stack(parts).sum()


def updated_factors(factors: Tensor, det: Tensor, own: Tensor,
                    targets: Tensor, tolerance: float, max_step: float,
                    min_factor: float,
                    max_factor: float) -> Tuple[Tensor, Tensor]:
    """One bounded step of every group's factor towards its target share.

    A group's share of the signal is measured against the student's
    detection signal alone:

    .. math::

        s_g = \\frac{f_g a_g}{d_g + f_g a_g}, \\qquad
        f^*_g = \\frac{t_g d_g}{(1 - t_g) a_g}

    where :math:`a_g` is the group's unbalanced statistic (its loss, or its
    gradient's L1 norm), :math:`d_g` the detection loss's, :math:`t_g` the
    target and :math:`f^*_g` the factor that meets it. A share inside the
    band :math:`|s_g - t_g| \\le \\tau t_g` keeps its factor; otherwise

    .. math::

        f_g \\leftarrow \\mathrm{clip}\\big(f^*_g,\\ f_g / m,\\ f_g m\\big)

    bounded by ``min_factor`` and ``max_factor``. Groups whose statistics
    are not finite or not positive keep their factor (share ``nan``).

    Args:
        factors: Current factors, shape ``(G, )``.
        det: Detection statistic per group, ``(G, )``.
        own: Unbalanced group statistic, ``(G, )``.
        targets: Target shares in (0, 1), ``(G, )``.
        tolerance: Half-width :math:`\\tau` of the band, relative to the
            target.
        max_step: Largest change :math:`m > 1` of a factor per update.
        min_factor: Lower bound of a factor.
        max_factor: Upper bound of a factor.

    Returns:
        tuple: The new factors and the measured shares (with the old
        factors), both ``(G, )``.
    """
    factors, det, own, targets = (
        t.double() for t in (factors, det, own, targets))
    valid = torch.isfinite(det) & torch.isfinite(own) & (det > 0) & \
        (own > 0)
    safe_own = torch.where(valid, own, torch.ones_like(own))
    safe_det = torch.where(valid, det, torch.ones_like(det))
    shares = factors * safe_own / (safe_det + factors * safe_own)
    ideal = targets * safe_det / ((1 - targets) * safe_own)
    stepped = torch.minimum(torch.maximum(ideal, factors / max_step),
                            factors * max_step).clamp(min_factor, max_factor)
    inside = (shares - targets).abs() <= tolerance * targets
    new = torch.where(valid & ~inside, stepped, factors)
    return new, torch.where(valid, shares, torch.full_like(shares, math.nan))


class DistillBalance(BaseModule):
    """Keep each distillation group at a target share of the student's
    training signal, for any method and any combination of methods.

    A group is a method (``groups='method'``: all its terms share one
    factor) or a single term (``groups='term'``). Every ``interval``
    training steps (from step ``start``) the subclass measures a statistic
    of each group and of the student's detection loss
    (:meth:`_measure`); :func:`updated_factors` then moves each group's
    factor one bounded step towards its target share. The factors multiply
    the terms together with the loss weights of the methods and with
    ``DistillLossWeightHook``'s schedule, which the statistics do not
    include: a warm-up still warms up.

    Factors, last shares and the step count are the module's extra state,
    so they are saved in checkpoints and restored by ``--resume``. The
    statistics are averaged over the processes of a distributed run before
    each update, so every rank has the same factors. The distiller logs
    ``balance_factor_<group>`` and ``balance_share_<group>`` with the
    losses.

    Args:
        target: Target share of every group, in (0, 1).
        targets: Per-group targets overriding ``target``, keyed by method
            name, or by ``'<method>_<term>'`` with ``groups='term'``.
        groups: ``'method'`` or ``'term'``.
        interval: Training steps between two updates.
        start: First step that may update (``None``: ``interval``).
        tolerance: Relative half-width of the band around the target in
            which a factor stays as it is.
        max_step: Largest change of a factor per update (a factor of
            ``max_step`` up or down).
        min_factor: Lower bound of a factor.
        max_factor: Upper bound of a factor.
        init_cfg: Unused (no parameters); mmengine's convention.
    """

    def __init__(self,
                 target: float = 0.1,
                 targets: Optional[Mapping[str, float]] = None,
                 groups: str = 'method',
                 interval: int = 50,
                 start: Optional[int] = None,
                 tolerance: float = 0.1,
                 max_step: float = 2.0,
                 min_factor: float = 1e-3,
                 max_factor: float = 1e3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        self.target = _check_fraction('target', target)
        if targets is not None and not isinstance(targets, Mapping):
            raise TypeError(f'{name} targets must be a dict {{group: share}}, '
                            f'got {targets!r}.')
        self.targets = {str(k): _check_fraction(f'targets[{k!r}]', v)
                        for k, v in (targets or {}).items()}
        if groups not in GROUPINGS:
            raise ValueError(f'{name} groups must be one of {GROUPINGS}, '
                             f'got {groups!r}.')
        self.groups = groups
        for key, value in (('interval', interval), ('start', start)):
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f'{name} {key} must be an integer >= 1, '
                                 f'got {value!r}.')
        self.interval = interval
        self.start = interval if start is None else start
        if isinstance(tolerance, bool) or not isinstance(
                tolerance, (int, float)) or not 0 <= tolerance < 1:
            raise ValueError(f'{name} tolerance must be in [0, 1), got '
                             f'{tolerance!r}.')
        self.tolerance = float(tolerance)
        self.max_step = _check_positive('max_step', max_step, above=1.0)
        self.min_factor = _check_positive('min_factor', min_factor)
        self.max_factor = _check_positive('max_factor', max_factor)
        if self.min_factor > 1 or self.max_factor < 1:
            raise ValueError(
                f'{name} needs min_factor <= 1 <= max_factor (the factors '
                f'start at 1), got {min_factor!r} and {max_factor!r}.')
        self.method_names: Tuple[str, ...] = ()
        #: group -> its terms (``'<method>_<term>'``), known from step 1
        self.group_terms: Optional[Dict[str, List[str]]] = None
        self.factors: Dict[str, float] = {}
        self.shares: Dict[str, float] = {}
        self.step = 0

    # ------------------------------------------------------------- binding
    def bind(self, method_names: Sequence[str]) -> None:
        """Check the target keys against the distiller's methods.

        Raises:
            KeyError: A key names no method (or, with ``groups='term'``,
                its method part names none).
            ValueError: A method name contains ``'loss'`` (its logged
                factor would be summed into the loss by mmengine).
        """
        self.method_names = tuple(method_names)
        name = type(self).__name__
        for method in self.method_names:
            if 'loss' in method:
                raise ValueError(
                    f'{name} logs balance_factor_<group>; the method name '
                    f'{method!r} contains "loss", so mmengine would add the '
                    'logged factor to the loss. Give the method another '
                    '`name`.')
        for key in self.targets:
            method = key if self.groups == 'method' else key.split('_')[0]
            if method not in self.method_names:
                raise KeyError(
                    f'{name} targets has the key {key!r}, but the '
                    f'distiller\'s methods are {list(self.method_names)}. '
                    + ('Key the targets by method name.'
                       if self.groups == 'method' else
                       "Key the targets by '<method>_<term>' (the loss name "
                       'without loss_).'))

    def group_of(self, term: str) -> str:
        """The group of a term ``'<method>_<term>'``."""
        return term.split('_')[0] if self.groups == 'method' else term

    def _set_groups(self, terms: Sequence[str]) -> None:
        """Fix the groups from the first step's terms; check term keys."""
        groups: Dict[str, List[str]] = {}
        for term in terms:
            groups.setdefault(self.group_of(term), []).append(term)
        unknown = [k for k in self.targets if k not in groups]
        if unknown:
            raise KeyError(
                f'{type(self).__name__} targets has the keys {unknown}, but '
                f'the distillation groups are {sorted(groups)}; fix the '
                'keys.')
        self.group_terms = groups
        for group in groups:
            self.factors.setdefault(group, 1.0)

    # ----------------------------------------------------------- each step
    def factor(self, term: str) -> float:
        """The balance factor of a term (1 before the first update)."""
        return self.factors.get(self.group_of(term), 1.0)

    def observe(self, distill: Mapping[str, Tensor],
                losses: Mapping[str, object], student: nn.Module) -> None:
        """Count a training step, measure when due and update the factors.

        Args:
            distill: The methods' unbalanced terms, ``{'<method>_<term>':
                scalar}``, with their graphs.
            losses: The student's detection losses, with their graphs.
            student: The student (the parameters gradients are measured on).
        """
        if self.group_terms is None:
            self._set_groups(list(distill))
        self.step += 1
        due = self.step >= self.start and \
            (self.step - self.start) % self.interval == 0
        measured = self._measure(self.group_terms, distill, losses, student,
                                 due)
        if measured is None:
            return
        det, own = measured
        stats = torch.cat([det, own]).detach().double()
        all_reduce(stats, op='mean')
        stats = stats.cpu()
        k = len(self.group_terms)
        names = list(self.group_terms)
        factors, shares = updated_factors(
            torch.tensor([self.factors[g] for g in names]), stats[:k],
            stats[k:], torch.tensor([self.targets.get(g, self.target)
                                     for g in names]), self.tolerance,
            self.max_step, self.min_factor, self.max_factor)
        self.factors = dict(zip(names, factors.tolist()))
        self.shares = {
            g: s for g, s in zip(names, shares.tolist()) if math.isfinite(s)
        }

    def _measure(self, group_terms: Mapping[str, List[str]],
                 distill: Mapping[str, Tensor], losses: Mapping[str, object],
                 student: nn.Module,
                 due: bool) -> Optional[Tuple[Tensor, Tensor]]:
        """The statistics of an update, or ``None`` when none is due.

        Returns:
            tuple: The detection statistic and the group statistic, each of
            shape ``(G, )`` in the order of ``group_terms``.
        """
        raise NotImplementedError

    def log_values(self, device: torch.device) -> Dict[str, Tensor]:
        """``balance_factor_<group>`` and, once measured,
        ``balance_share_<group>``, as tensors for the loss dict."""
        out = {f'balance_factor_{g}': torch.tensor(f, device=device)
               for g, f in self.factors.items()}
        out.update({f'balance_share_{g}': torch.tensor(s, device=device)
                    for g, s in self.shares.items()})
        return out

    # --------------------------------------------------------------- state
    def get_extra_state(self) -> dict:
        """Factors, shares, step and the subclass's running statistics, as
        plain data (checkpoints load weights-only)."""
        return dict(step=self.step, factors=dict(self.factors),
                    shares=dict(self.shares),
                    group_terms=None if self.group_terms is None else
                    {g: list(t) for g, t in self.group_terms.items()},
                    running=self._running_state())

    def set_extra_state(self, state: dict) -> None:
        """Restore what :meth:`get_extra_state` saved (``--resume``)."""
        self.step = int(state['step'])
        self.factors = {str(g): float(f) for g, f in state['factors'].items()}
        self.shares = {str(g): float(s) for g, s in state['shares'].items()}
        terms = state.get('group_terms')
        self.group_terms = None if terms is None else {
            str(g): [str(t) for t in ts] for g, ts in terms.items()}
        self._load_running_state(state.get('running') or {})

    def _running_state(self) -> dict:
        """The subclass's running statistics, as plain data."""
        return {}

    def _load_running_state(self, state: dict) -> None:
        """Restore :meth:`_running_state`."""


def build_balance(cfg) -> Optional[DistillBalance]:
    """Build a distiller's ``balance`` from its config (``None``: off).

    Raises:
        TypeError: ``cfg`` is not a dict, or has an option the type does
            not take (the message lists the options it takes).
        KeyError: The type is not a registered balance.
    """
    if cfg is None:
        return None
    from mmdet.registry import MODELS
    if not isinstance(cfg, Mapping):
        raise TypeError(
            "A distiller's `balance` must be a config dict such as "
            "dict(type='GradientShareBalance', target=0.1), got "
            f'{cfg!r}.')
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    known = sorted(name for name, c in MODELS.module_dict.items()
                   if isinstance(c, type) and issubclass(c, DistillBalance))
    if not (isinstance(cls, type) and issubclass(cls, DistillBalance)):
        raise KeyError(f'Unknown balance type {kind!r}; the balances are '
                       f'{known}.')
    accepted = {
        name for klass in cls.__mro__ if issubclass(klass, DistillBalance)
        for name in inspect.signature(klass.__init__).parameters
        if name not in ('self', 'kwargs')
    }
    unknown = sorted(set(cfg) - accepted)
    if unknown:
        raise TypeError(f'{cls.__name__} has no option {unknown}; its options '
                        f'are {sorted(accepted)}.')
    return cls(**cfg)
