"""ADL: the adaptive distillation loss of Tang et al. (arXiv 1901.00366)."""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from ...utils.checked_choice import checked_choice
from .blocked_row_sum import BlockedRowSum
from .logit_standardization import standardize_logits


@MODELS.register_module()
class ADLoss(nn.Module):
    r"""Adaptive distillation loss on sigmoid class logits.

    For every kept row ``i`` (an anchor or location) and class ``c``, with
    ``q = σ(z_t / T)`` (teacher) and ``p = σ(z_s / T)`` (student)::

        KL   = q·log(q/p) + (1−q)·log((1−q)/(1−p))
        H(q) = −q·log q − (1−q)·log(1−q)
        w    = (1 − exp(−(KL + β·H(q))))^γ
        ℓ    = w · KL                                  (base='kl', paper)
        ℓ    = w · [α·(−q·log p) + (1−α)·(−(1−q)·log(1−p))]
                                                        (base='bce', code)
        N    = max(Σ_{i,c} q^θ, 1)
        L    = λ · T² · Σ_{i,c} ℓ / N

    Gradients flow into the student through both ``w`` and the base term;
    the teacher is detached. Rows outside ``valid_mask`` (anchors the
    assigner ignores) are left out of the sum. They stay in ``N`` with
    ``normaliser='all'``, as in the authors' code, and are left out of it too
    with ``normaliser='kept'``. The ``T²`` factor is also the authors' (it
    keeps the gradient's scale when ``T ≠ 1``; it is 1 at the default T = 1).

    With ``base='bce'`` and α = 0.5 the base term is ``0.5·(KL + H(q))``: its
    gradient with respect to the student logit is half that of ``'kl'``
    (``0.5·(p − q)`` against ``p − q``), so at equal λ the authors' loss is
    half as strong as the paper's formula.

    The sum runs in row blocks with the gradient in closed form
    (:class:`BlockedRowSum`), so that its time and memory stay small at
    COCO scale.

    With ``logit_standardization``, ``z_s ← Z(z_s)`` and ``z_t ← Z(z_t)``
    first (:func:`standardize_logits`), outside the blocks: a few more
    (N, C) fp32 tensors are kept for the backward pass.

    Numerics: everything is computed in fp32 (fp64 inputs stay fp64). The
    student's ``log p`` and ``log(1−p)`` are log-sigmoids, exact and finite
    for any logit; the teacher's ``q`` is clamped to ``[eps, 1−eps]`` before
    its logs, so ``q = 0`` or ``1`` gives finite values.

    Args:
        beta: β, weight of the teacher entropy in the adaptive weight.
        gamma: γ, focusing exponent of the adaptive weight.
        theta: θ, exponent of the normaliser.
        base: ``'kl'`` (the paper) or ``'bce'`` (the authors' code).
        alpha: α of the ``'bce'`` base (0.5 in the code: 0.5·w·(KL + H)).
        normaliser: Rows summed in ``N``: ``'all'`` (the authors' code,
            ignored anchors included) or ``'kept'`` (only the rows of
            ``valid_mask``).
        temperature: T.
        eps: Clamp of the teacher probability.
        loss_weight: λ.
        logit_standardization: Z-score the student's and the teacher's
            logits over the classes first (:func:`standardize_logits`, Sun
            et al., CVPR 2024); off by default.
    """

    def __init__(self,
                 beta: float = 1.0,
                 gamma: float = 2.0,
                 theta: float = 1.8,
                 base: str = 'kl',
                 alpha: float = 0.5,
                 normaliser: str = 'all',
                 temperature: float = 1.0,
                 eps: float = 1e-6,
                 loss_weight: float = 1.0,
                 logit_standardization: bool = False) -> None:
        super().__init__()
        checked_choice('base', base, ('kl', 'bce'))
        checked_choice(
            'normaliser', normaliser, ('all', 'kept'),
            "'all': every row, the authors' code; 'kept': the rows of "
            'valid_mask')
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.beta = beta
        self.gamma = gamma
        self.theta = theta
        self.base = base
        self.alpha = alpha
        self.normaliser = normaliser
        self.temperature = temperature
        self.eps = eps
        self.loss_weight = loss_weight
        self.logit_standardization = bool(logit_standardization)

    def forward(self,
                student_logits: Tensor,
                teacher_logits: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """Compute ``L_ADL``.

        Args:
            student_logits: (N, C) class logits of the student.
            teacher_logits: (N, C) class logits of the teacher, same rows.
            valid_mask: (N,) bool, rows to keep; ``None`` keeps all.

        Returns:
            Tensor: The scalar loss (0 with a zero gradient when no row is
            kept).
        """
        if student_logits.shape != teacher_logits.shape \
                or student_logits.dim() != 2:
            raise ValueError(
                'ADLoss needs student and teacher logits of the same (N, C) '
                f'shape, got {tuple(student_logits.shape)} and '
                f'{tuple(teacher_logits.shape)}.')
        with torch.autocast(student_logits.device.type, enabled=False):
            return self._loss(student_logits, teacher_logits, valid_mask)

    def _loss(self, student_logits: Tensor, teacher_logits: Tensor,
              valid_mask: Optional[Tensor]) -> Tensor:
        dtype = torch.promote_types(student_logits.dtype, torch.float32)
        if self.logit_standardization:
            student_logits = standardize_logits(student_logits.to(dtype))
            teacher_logits = standardize_logits(
                teacher_logits.detach().to(dtype))
        z_s = student_logits.to(dtype) / self.temperature
        with torch.no_grad():
            q = torch.sigmoid(teacher_logits.to(dtype) / self.temperature)
            q = q.clamp_(self.eps, 1 - self.eps)
            q_theta = q.pow(self.theta).sum(dim=1)
            normaliser = q_theta.sum()  # 'all': every row
            keep = None
            if valid_mask is not None:
                if valid_mask.shape != student_logits.shape[:1]:
                    raise ValueError(
                        'valid_mask must have shape '
                        f'({student_logits.shape[0]},), got '
                        f'{tuple(valid_mask.shape)}.')
                keep = valid_mask.to(dtype)
                if self.normaliser == 'kept':
                    normaliser = (q_theta * keep).sum()
        total = BlockedRowSum.apply(
            z_s, keep,
            functools.partial(_adl_terms, beta=self.beta, gamma=self.gamma,
                              base=self.base, alpha=self.alpha), q)
        scale = self.loss_weight * self.temperature**2
        return scale * total / normaliser.clamp(min=1)


def _adl_terms(z: Tensor, q: Tensor, beta: float, gamma: float, base: str,
               alpha: float, grad: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """``w·ℓ`` per element and, when ``grad``, its derivative in ``z``.

    With ``sp(x) = log(1 + eˣ)``: ``−log p = sp(−z)``, ``−log(1−p) = sp(z)``,
    so ``KL = sp(z) − q·z − H(q)`` and ``∂KL/∂z = p − q``; with
    ``E = KL + β·H`` and ``e = exp(−E)``, ``w = (1 − e)^γ`` and
    ``∂w/∂z = γ·(1 − e)^(γ−1)·e·(p − q)``.
    """
    log_q, log_1mq = q.log(), (-q).log1p()
    entropy = -(q * log_q + (1 - q) * log_1mq)
    sp_pos, sp_neg = F.softplus(z), F.softplus(-z)
    kl = sp_pos - q * z - entropy
    # KL >= 0 in exact arithmetic; clamp rounding so the power is real
    energy = (kl + beta * entropy).clamp(min=0)
    one_minus_e = -torch.expm1(-energy)
    weight = one_minus_e.pow(gamma)
    if base == 'kl':
        term = kl
    else:
        term = alpha * q * sp_neg + (1 - alpha) * (1 - q) * sp_pos
    if not grad:
        return weight * term, None
    p = torch.sigmoid(z)
    d_energy = (p - q) * (kl + beta * entropy >= 0)
    d_weight = gamma * one_minus_e.pow(gamma - 1) * torch.exp(-energy) * \
        d_energy
    if base == 'kl':
        d_term = p - q
    else:
        d_term = -alpha * q * (1 - p) + (1 - alpha) * (1 - q) * p
    return weight * term, d_weight * term + weight * d_term
