"""Scaling, stopping and guarding the distillation losses of a distiller."""
from __future__ import annotations

import logging
import math
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmdet.structures import SampleList
from mmengine.logging import MessageHub, print_log
from torch import Tensor

from ...utils.checked_choice import checked_choice
from ..capture import DistillRecord
from .nonfinite_diagnosis import (NonFiniteDistillLossError,
                                  describe_nonfinite_step)

#: Values of the distillers' ``nonfinite_loss`` argument.
NONFINITE_MODES = ('raise', 'skip')
#: Message-hub key counting the steps whose distillation terms were skipped.
SKIPPED_STEPS_KEY = 'train/distill_skipped_steps'


def check_factor(value, name: str) -> None:
    """Raise unless ``value`` is a finite number >= 0 (not a bool), naming
    it as ``name``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f'{name} must be a finite number >= 0, got '
                         f'{value!r}.')


class DistillLossControlsMixin:
    """The distillation-loss controls of :class:`Distiller`.

    - **Scale**: :attr:`distill_loss_scale` (1.0) multiplies every
      distillation term, :attr:`distill_term_scales` (``{key: factor}``)
      the terms of one method or single terms; :class:`DistillLossWeightHook`
      sets both each iteration through :meth:`set_distill_loss_scale`. A
      term whose factor is 0 is replaced by a zero.
    - **Stop**: when every term's factor is 0, the step runs the student
      alone (no teacher, no distillation losses), once the distiller knows
      its term names from one computed step. The terms are still returned,
      as zeros tied to the distillation modules' parameters, so DDP sees
      every parameter used and the logs show them at 0.
    - **Non-finite guard**: one ``torch.isfinite`` over the stacked terms per
      step; with ``nonfinite_loss='raise'`` a NaN/inf term raises
      :class:`NonFiniteDistillLossError` with a diagnosis, with ``'skip'``
      the step's distillation terms become zeros (the student still trains
      on its own losses), a warning is logged, ``distill_skipped_steps``
      counts them, and more than ``max_consecutive_skips`` in a row raise.
    """

    def _init_distill_loss_controls(self, nonfinite_loss: str,
                                    max_consecutive_skips: int) -> None:
        checked_choice('nonfinite_loss', nonfinite_loss, NONFINITE_MODES)
        if not isinstance(max_consecutive_skips, int) \
                or max_consecutive_skips < 0:
            raise ValueError('max_consecutive_skips must be an integer >= 0, '
                             f'got {max_consecutive_skips!r}.')
        self.nonfinite_loss = nonfinite_loss
        self.max_consecutive_skips = max_consecutive_skips
        self.distill_loss_scale = 1.0
        self.distill_term_scales: Dict[str, float] = {}
        #: Steps of this process whose distillation terms were skipped.
        self.skipped_steps = 0
        self._consecutive_skips = 0
        self._distill_terms: Optional[Dict[str, Tuple[str, str]]] = None

    # ------------------------------------------------------------- the scale
    def set_distill_loss_scale(
            self,
            scale: float,
            term_scales: Optional[Mapping[str, float]] = None) -> None:
        """Set the factors of the distillation terms.

        Args:
            scale: Factor of every term; 0 stops distillation.
            term_scales: Further factors keyed by loss name
                (``'loss_sea_rel'``), by ``'<method>_<term>'``
                (``'sea_rel'``), by method name (``'sea'``: all its terms)
                or by bare term name (``'rel'``, when only one method has
                such a term). A term's factor is ``scale`` times every
                factor whose key matches it. Keys are checked against the
                terms at the next step.
        """
        check_factor(scale, "Distillation loss factor 'scale'")
        scales = {}
        for key, value in (term_scales or {}).items():
            check_factor(value, f'Distillation loss factor {key!r}')
            key = key[len('loss_'):] if key.startswith('loss_') else key
            scales[key] = float(value)
        self.distill_loss_scale = float(scale)
        self.distill_term_scales = scales

    def _matching_terms(self, key: str,
                        terms: Mapping[str, Tuple[str, str]]) -> List[str]:
        """The terms (``'<method>_<term>'``) a factor key applies to."""
        if key in terms:
            return [key]
        by_method = [q for q, (m, _) in terms.items() if m == key]
        if by_method:
            return by_method
        bare = [q for q, (_, t) in terms.items() if t == key]
        if len(bare) > 1:
            raise KeyError(
                f'The distillation factor key {key!r} is ambiguous: the '
                f'terms {bare} are all named {key!r}. Use the loss name '
                f'(e.g. loss_{bare[0]}).')
        return bare

    def _term_factors(
            self, terms: Mapping[str, Tuple[str, str]]) -> Dict[str, float]:
        """The factor of each term, ``{'<method>_<term>': factor}``."""
        factors = {q: self.distill_loss_scale for q in terms}
        unknown = []
        for key, value in self.distill_term_scales.items():
            hits = self._matching_terms(key, terms)
            if not hits:
                unknown.append(key)
            for q in hits:
                factors[q] *= value
        if unknown:
            shown = sorted({t for _, t in terms.values()}) \
                if len({m for m, _ in terms.values()}) == 1 else sorted(terms)
            raise KeyError(
                f'Distillation factors were given for the terms '
                f'{sorted(unknown)}, but {type(self).__name__} computes '
                f'{shown} (loss names {sorted("loss_" + q for q in terms)})'
                '; fix the keys of term_schedules.')
        return factors

    def distill_term_factor(self, term: str) -> float:
        """The factor of one term, by any key :meth:`set_distill_loss_scale`
        takes (before the first step only exact keys are known)."""
        key = term[len('loss_'):] if term.startswith('loss_') else term
        terms = self._distill_terms
        if terms is None:
            return self.distill_loss_scale * self.distill_term_scales.get(
                key, 1.0)
        factors = self._term_factors(terms)
        hits = self._matching_terms(key, terms)
        if not hits:
            raise KeyError(f'No distillation term matches {term!r}; the '
                           f'terms are {sorted(terms)}.')
        return factors[hits[0]]

    # ------------------------------------------------------------- stopping
    def _distill_zero(self, reference: Tensor) -> Tensor:
        """A zero whose gradient reaches every distillation parameter.

        Built from the parameters (never from a loss value, which may be
        NaN, and ``nan * 0`` is NaN), so the gradients are exact zeros.
        One sum per parameter tensor; only steps that distil nothing pay
        for it.
        """
        params = [
            p for name, p in self.named_parameters()
            if p.requires_grad and not name.startswith('student.')
        ]
        if not params:
            return reference.new_zeros((), dtype=torch.float32)
        zero = torch.stack([p.sum() for p in params]).sum() * 0.0
        # parameters that diverged to inf would make it NaN
        return torch.nan_to_num(zero, nan=0.0, posinf=0.0, neginf=0.0)

    def _teacher_can_be_skipped(self, data_samples: SampleList) -> bool:
        """Whether this step distils nothing and the teacher is not needed.

        The teacher still runs for batches with images flagged
        ``metainfo['unlabeled']``: their targets may be its detections.
        """
        terms = self._distill_terms
        if terms is None or any(
                s.metainfo.get('unlabeled', False) for s in data_samples):
            return False
        return self.distill_loss_scale == 0 or bool(terms) and all(
            f == 0 for f in self._term_factors(terms).values())

    def _student_only_loss(self, batch_inputs: Tensor,
                           data_samples: SampleList) -> Dict[str, Tensor]:
        """The student's own losses plus the distillation terms at zero."""
        data_samples = self.prepare_student_samples(data_samples, None)
        losses = self.student.loss(batch_inputs, data_samples)
        zero = self._distill_zero(batch_inputs)
        for term in self._distill_terms:
            losses[f'loss_{term}'] = zero
        balance = getattr(self, 'balance', None)
        if balance is not None:
            if self.training:  # the step counts on every rank
                balance.observe(None, None, None)
            losses.update(balance.log_values(batch_inputs.device))
        return losses

    # ------------------------------------------------- scale, check, skip
    def _controlled_distill_terms(
            self, distill: Dict[str, Tensor], record: DistillRecord,
            batch_inputs: Tensor,
            data_samples: SampleList) -> Dict[str, Tensor]:
        """Scale the terms; zero them where their factor is 0 or, with
        ``nonfinite_loss='skip'``, where the step is not finite."""
        terms = {q: tuple(q.split('_', 1)) for q in distill}
        factors = self._term_factors(terms)
        self._distill_terms = terms
        balance = getattr(self, 'balance', None)
        if balance is not None:
            factors = {q: f * balance.factor_of(q) for q, f in factors.items()}
        active = [term for term in distill if factors[term] != 0]
        skip = False
        if active:
            values = torch.stack(
                [distill[term].detach().float().sum() for term in active])
            # the step's single host synchronisation
            if bool(torch.isfinite(values).all()):
                self._consecutive_skips = 0
            else:
                self._on_nonfinite(dict(zip(active, values.tolist())),
                                   record, batch_inputs, data_samples)
                skip = True
        zero = None
        out = {}
        for term, value in distill.items():
            if skip or factors[term] == 0:
                if zero is None:
                    zero = self._distill_zero(batch_inputs)
                out[term] = zero
            else:
                out[term] = value if factors[term] == 1.0 \
                    else value * factors[term]
        return out

    def _on_nonfinite(self, values: Dict[str, float], record: DistillRecord,
                      batch_inputs: Tensor, data_samples: SampleList) -> None:
        """Raise, or count and log a skipped step (``'skip'``)."""
        bad = {
            f'loss_{term}': value
            for term, value in values.items() if not math.isfinite(value)
        }
        message = describe_nonfinite_step(type(self).__name__, bad,
                                          batch_inputs, data_samples, record)
        if self.nonfinite_loss == 'raise':
            raise NonFiniteDistillLossError(message)
        self._consecutive_skips += 1
        if self._consecutive_skips > self.max_consecutive_skips:
            raise NonFiniteDistillLossError(
                f'{self._consecutive_skips} consecutive steps with a '
                'non-finite distillation loss, more than '
                f'max_consecutive_skips={self.max_consecutive_skips}; '
                'distillation is diverging, not hitting an odd batch.\n' +
                message)
        self.skipped_steps += 1
        hub = MessageHub.get_current_instance()
        previous = hub.log_scalars.get(SKIPPED_STEPS_KEY)
        total = (previous.current() if previous is not None else 0) + 1
        hub.update_scalar(SKIPPED_STEPS_KEY, total)
        print_log(
            f'{message}\n  Skipped: this step trains the student on its own '
            f'losses only ({self._consecutive_skips} consecutive, '
            f'{int(total)} in this run).',
            logger='current', level=logging.WARNING)
