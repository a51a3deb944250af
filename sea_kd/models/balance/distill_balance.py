"""The base class of the distiller's automatic balancing of its terms."""
from __future__ import annotations

import hashlib
import inspect
import json
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from torch import Tensor, nn


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


def _checked_groups(
        name: str, groups: Optional[Mapping[str, Sequence[str]]]
) -> Dict[str, Tuple[str, ...]]:
    """``groups`` as ``{group: (term, ...)}``, checked for form."""
    if groups is None:
        return {}
    example = "dict(ld_kd=['ld_kd'])"
    if not isinstance(groups, Mapping):
        raise TypeError(f'{name} groups must be a dict {{group: [term, ...]}}'
                        f' such as {example}, got {groups!r}.')
    out: Dict[str, Tuple[str, ...]] = {}
    seen: Dict[str, str] = {}
    for group, terms in groups.items():
        if isinstance(terms, str) or not isinstance(terms, Sequence) \
                or not terms or not all(
                    isinstance(t, str) and '_' in t for t in terms):
            raise TypeError(
                f'{name} groups[{group!r}] must be a non-empty list of terms '
                f"named '<method>_<term>', such as {example}, got {terms!r}.")
        if not isinstance(group, str) or not group or 'loss' in group:
            raise ValueError(
                f'{name} group names are logged as balance_factor_<group> '
                'and must be non-empty strings without "loss" (mmengine '
                f'would add the logged factor to the loss), got {group!r}.')
        for term in terms:
            if term in seen:
                where = f'twice in the group {group!r}' \
                    if seen[term] == group else \
                    f'in the groups {seen[term]!r} and {group!r}'
                raise ValueError(f'{name} puts the term {term!r} {where}; '
                                 'list each term once.')
            seen[term] = group
        out[group] = tuple(terms)
    return out


def _layout_key(group_names: Sequence[str],
                groups: Mapping[str, Sequence[str]]) -> int:
    """A signed 64-bit digest of the groups and the terms in each."""
    text = json.dumps([list(group_names),
                       [[g, list(t)] for g, t in groups.items()]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], 'big',
                          signed=True)


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
    """Keep each method's distillation terms at a target share of the
    student's training signal, for any method and any combination of
    methods.

    Each method is one group: all its terms share one factor, except the
    terms that ``groups`` names, which form groups of their own (a method
    with several terms can so have a factor per term). Every
    ``interval`` training steps (from step ``start``) the subclass measures
    a statistic of each method's unbalanced terms and of the student's
    detection loss (:meth:`_measure`); :func:`updated_factors` then moves
    each factor one bounded step towards its target share. The factors
    multiply the terms together with the loss weights of the methods and
    with ``DistillLossWeightHook``'s schedule, which the statistics do not
    include: a warm-up still warms up.

    The factors, the last measured shares, the step count and the running
    sums are buffers (fixed in shape once :meth:`bind` knows the methods),
    so they are saved in checkpoints, restored by ``--resume``, broadcast
    by mmengine at the start of a distributed run and kept by EMA copies
    like any other state. The statistics are averaged over the processes
    of a distributed run before each update, and every process counts every
    training step (also those that skip the teacher), so every rank
    applies the same factors. The distiller logs ``balance_factor_<group>``
    and ``balance_share_<group>`` with the losses (a method's group is
    named as the method).

    Args:
        target: Target share of every group, in (0, 1).
        targets: Per-group targets overriding ``target``, keyed by method
            or ``groups`` name.
        groups: Terms balanced apart from the rest of their method,
            ``{group: [term, ...]}``, each term named ``'<method>_<term>'``
            as the log shows it without ``loss_`` (``dict(ld_kd=['ld_kd'])``
            gives LD's logit KD a factor of its own; LD's other terms keep
            the factor of the group ``ld``). The methods are checked at
            build, the term names at the first training step (a method
            knows its terms' names only once it has computed them).
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
                 groups: Optional[Mapping[str, Sequence[str]]] = None,
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
            raise TypeError(f'{name} targets must be a dict {{method or '
                            f'group: share}}, got {targets!r}.')
        self.targets = {str(k): _check_fraction(f'targets[{k!r}]', v)
                        for k, v in (targets or {}).items()}
        self.groups = _checked_groups(name, groups)
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
        #: The methods' groups, then those of ``groups``: one factor each.
        self.group_names: Tuple[str, ...] = ()
        self._term_group: Dict[str, int] = {}
        self._terms_checked = False
        # host copies of the buffers, so that no step waits for a device
        self._factors: List[float] = []
        self._shares: List[float] = []
        #: the subclass's further per-group statistics of the last update,
        #: logged as ``balance_<name>_<group>`` (not saved: a diagnostic)
        self._extra: Dict[str, List[float]] = {}
        self._step = 0
        self.register_load_state_dict_post_hook(
            lambda module, keys: module._read_buffers())

    # ------------------------------------------------------------- binding
    def bind(self, method_names: Sequence[str]) -> None:
        """Fix the groups (one factor each) and check the keys that name
        methods.

        Raises:
            KeyError: A ``targets`` key names no method or group, or a
                ``groups`` term names no method.
            ValueError: A method or group name contains ``'loss'`` (its
                logged factor would be summed into the loss by mmengine),
                or a group is named as a method.
        """
        self.method_names = tuple(method_names)
        name = type(self).__name__
        for method in self.method_names:
            if 'loss' in method:
                raise ValueError(
                    f'{name} logs balance_factor_<method>; the method name '
                    f'{method!r} contains "loss", so mmengine would add the '
                    'logged factor to the loss. Give the method another '
                    '`name`.')
        clash = sorted(set(self.groups) & set(self.method_names))
        if clash:
            raise ValueError(
                f'{name} groups {clash} are named as methods; a method\'s '
                'own group has its name. Name the groups otherwise.')
        self.group_names = self.method_names + tuple(self.groups)
        self._term_group = {}
        for index, (group, terms) in enumerate(self.groups.items(),
                                               len(self.method_names)):
            for term in terms:
                method = term.split('_')[0]
                if method not in self.method_names:
                    raise KeyError(
                        f'{name} groups[{group!r}] names the term {term!r}, '
                        'but no method of the distiller is named '
                        f'{method!r}; the methods are '
                        f'{list(self.method_names)}. Name a term '
                        "'<method>_<term>' as the log shows it without "
                        "'loss_'.")
                self._term_group[term] = index
        unknown = sorted(set(self.targets) - set(self.group_names))
        if unknown:
            raise KeyError(
                f'{name} targets has the keys {unknown}, but the '
                f'distiller\'s methods are {list(self.method_names)}'
                + (f' and the groups {list(self.groups)}'
                   if self.groups else '') +
                '. Key the targets by method or group name.')
        g = len(self.group_names)
        self.register_buffer('factor', torch.ones(g, dtype=torch.float64))
        self.register_buffer(
            'share', torch.full((g, ), math.nan, dtype=torch.float64))
        self.register_buffer('step', torch.zeros((), dtype=torch.long))
        if self.groups:
            # which terms each factor belongs to, so that a checkpoint saved
            # with other groups of the same number is refused, not misread
            self._layout = _layout_key(self.group_names, self.groups)
            self.register_buffer('layout', torch.tensor(self._layout))
        self._register_running_buffers(g)
        self._read_buffers()

    def _read_buffers(self) -> None:
        """Refresh the host copies after the buffers were loaded."""
        self._extra = {}  # the last update's diagnostics, not the state's
        if not self.group_names:
            return
        if self.groups and int(self.layout) != self._layout:
            raise ValueError(
                f'The {type(self).__name__} state being loaded was saved '
                'with other balance groups (or methods) than '
                f'{dict(self.groups)} on {list(self.method_names)}, so its '
                'factors belong to other terms. Resume with the groups it '
                'was saved with, or start a new run.')
        self._factors = self.factor.tolist()
        self._shares = self.share.tolist()
        self._step = int(self.step)
        self._read_running_buffers()

    @property
    def factors(self) -> Dict[str, float]:
        """Each group's current factor, keyed by method or group name."""
        return dict(zip(self.group_names, self._factors))

    @property
    def shares(self) -> Dict[str, float]:
        """Each group's last measured share (groups measured so far)."""
        return {m: s for m, s in zip(self.group_names, self._shares)
                if math.isfinite(s)}

    # ----------------------------------------------------------- each step
    def _group_of(self, term: str) -> int:
        group = self._term_group.get(term)
        return self.method_names.index(term.split('_')[0]) \
            if group is None else group

    def factor_of(self, term: str) -> float:
        """The balance factor of a term ``'<method>_<term>'``."""
        return self._factors[self._group_of(term)]

    def _group_terms(self, distill: Mapping[str, Tensor]) -> List[List[str]]:
        if not self._terms_checked:
            missing = sorted(set(self._term_group) - set(distill))
            if missing:
                raise KeyError(
                    f'{type(self).__name__} groups name the terms {missing}, '
                    f'which no method computed; the terms are '
                    f'{sorted(distill)}. Name terms as the log shows them '
                    "without 'loss_'.")
            self._terms_checked = True
        groups: List[List[str]] = [[] for _ in self.group_names]
        for term in distill:
            groups[self._group_of(term)].append(term)
        return groups

    def observe(self, distill: Optional[Mapping[str, Tensor]],
                losses: Optional[Mapping[str, object]],
                student: Optional[nn.Module]) -> None:
        """Count a training step; when an update is due, measure, average
        over the processes and update the factors.

        Args:
            distill: The methods' unbalanced terms, ``{'<method>_<term>':
                scalar}``, with their graphs; ``None`` for a step that
                computed none (the teacher was skipped): it still counts,
                and joins a due update's averaging without statistics.
            losses: The student's detection losses, with their graphs.
            student: The student (the parameters gradients are measured on).
        """
        self._step += 1
        self.step.fill_(self._step)
        due = self._step >= self.start and \
            (self._step - self.start) % self.interval == 0
        g = len(self.group_names)
        measured = None if distill is None else self._measure(
            self._group_terms(distill), distill, losses, student, due)
        if not due:
            return
        extra = len(self.extra_statistics)
        if measured is None:
            # nothing measured (the teacher was skipped, which a global
            # schedule does on every rank at once): nan skips the update
            stats = torch.full(((2 + 2 * extra) * g, ), math.nan,
                               dtype=torch.float64, device=self.factor.device)
        else:
            if len(measured) != 2 + extra:
                raise ValueError(
                    f'{type(self).__name__}._measure returned '
                    f'{len(measured)} statistics; it must return 2 plus one '
                    f'per name of extra_statistics {self.extra_statistics}.')
            measured = [m.detach().double() for m in measured]
            # a further statistic is averaged over the ranks that have it:
            # its values with nan as 0, then how many ranks had each
            stats = torch.cat(measured[:2] + [
                part for m in measured[2:]
                for part in (m.nan_to_num(0.0), m.isfinite().double())
            ])
        all_reduce(stats, op='mean')
        stats = stats.cpu()
        self._extra = {
            name: (stats[(2 + 2 * i) * g:(3 + 2 * i) * g] /
                   stats[(3 + 2 * i) * g:(4 + 2 * i) * g]).tolist()
            for i, name in enumerate(self.extra_statistics)
        }
        targets = torch.tensor(
            [self.targets.get(m, self.target) for m in self.group_names],
            dtype=torch.float64)
        factors, shares = updated_factors(
            torch.tensor(self._factors, dtype=torch.float64), stats[:g],
            stats[g:2 * g], targets, self.tolerance, self.max_step,
            self.min_factor, self.max_factor)
        self._factors, self._shares = factors.tolist(), shares.tolist()
        self.factor.copy_(factors)
        self.share.copy_(shares)

    @property
    def extra_statistics(self) -> Tuple[str, ...]:
        """Names of the further per-group statistics :meth:`_measure`
        returns after the two it always returns (none by default)."""
        return ()

    def _measure(self, groups: List[List[str]],
                 distill: Mapping[str, Tensor], losses: Mapping[str, object],
                 student: nn.Module,
                 due: bool) -> Optional[Tuple[Tensor, ...]]:
        """The statistics of an update, or ``None`` when none is due.

        Returns:
            tuple: The detection statistic and the group statistic, then
            one statistic per name of :attr:`extra_statistics`, each of
            shape ``(G, )`` in the order of :attr:`group_names`.
        """
        raise NotImplementedError

    def log_values(self, device: torch.device) -> Dict[str, Tensor]:
        """``balance_factor_<group>`` and, once measured,
        ``balance_share_<group>`` (and the subclass's
        :attr:`extra_statistics`), as tensors for the loss dict."""
        out = {f'balance_factor_{m}': torch.tensor(f, device=device)
               for m, f in self.factors.items()}
        out.update({f'balance_share_{m}': torch.tensor(s, device=device)
                    for m, s in self.shares.items()})
        for name, values in self._extra.items():
            out.update({f'balance_{name}_{m}': torch.tensor(v, device=device)
                        for m, v in zip(self.group_names, values)
                        if math.isfinite(v)})
        return out

    # ------------------------------------------- the subclass's running state
    def _register_running_buffers(self, num_groups: int) -> None:
        """Register the subclass's running statistics as buffers."""

    def _read_running_buffers(self) -> None:
        """Refresh the subclass's host copies after a load."""


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
            "dict(type='GradientShareBalance', target=0.9), got "
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
