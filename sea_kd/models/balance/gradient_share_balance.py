"""Balancing by gradient share: each group's gradient on the student."""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .distill_balance import DistillBalance, student_detection_loss


def _l1(grads: Sequence[Optional[Tensor]], where: Sequence[int],
        zero: Tensor) -> Tensor:
    """Summed L1 norm of ``grads[i]`` for ``i`` in ``where`` (skipping
    ``None``); ``zero`` when there is none."""
    norms = [grads[i].abs().sum(dtype=torch.float64) for i in where
             if grads[i] is not None]
    return torch.stack(norms).sum() if norms else zero


def _cosine(own: Sequence[Optional[Tensor]], det: Sequence[Optional[Tensor]],
            where: Sequence[int], nan: Tensor) -> Tensor:
    r"""Cosine of the two gradients over the tensors ``where`` that both
    reach, :math:`\sum_i a_i \cdot d_i / (\lVert a \rVert\,
    \lVert d \rVert)`, in float64; ``nan`` when either is zero there."""
    both = [i for i in where if own[i] is not None and det[i] is not None]
    if not both:
        return nan
    sums = []
    for i in both:
        a, d = own[i].double(), det[i].double()
        sums.append(torch.stack([(a * d).sum(), a.square().sum(),
                                 d.square().sum()]))
    sums = torch.stack(sums).sum(0)
    norms = (sums[1] * sums[2]).sqrt()
    return torch.where(norms > 0, sums[0] / norms, nan)


@MODELS.register_module()
class GradientShareBalance(DistillBalance):
    """Keep each group's gradient at a target share of the student's
    gradient, in the spirit of RT-DETRv4's gradient-guided weighting.

    At each update (every ``interval`` steps; never in between) the
    gradients of the student's detection loss and of each group's
    unbalanced terms are taken with respect to the student's parameters
    (``torch.autograd.grad``, the graphs kept for the step's own backward).
    For group :math:`g`, :math:`a_g` is the L1 norm of its gradient over the
    student's parameter tensors it reaches and :math:`d_g` the L1 norm of
    the detection gradient over the same tensors (a feature term on the
    neck is compared with the detection gradient of the backbone and neck,
    not of the head); the share is
    :math:`f_g a_g / (d_g + f_g a_g)` (see
    :func:`~sea_kd.models.balance.distill_balance.updated_factors`).
    The default target, 0.9, was chosen on val of the RetinaNet demo pair
    among 0.1, 0.3 and 0.9 (``docs/results.md``): the demo's students learn
    most when the teacher's gradient leads. RT-DETRv4 (arXiv 2510.25257)
    keeps its distillation gradient at about 11 % of the encoder's on
    strong real-time detectors; compare both on your pair.

    Cost: at an update step, one extra backward through the student for
    the detection loss and one per group; ``interval=50`` spreads that over
    50 steps. Under float16 autocast small gradients may underflow in
    these extra backwards (no loss scale is applied to them); bfloat16 and
    float32 are unaffected.

    With ``log_cosine=True`` each update also logs
    ``balance_cos_<group>``, the cosine between the group's gradient and
    the detection gradient over the parameter tensors both reach: whether
    a term pushes the shared parameters against the detection loss (a
    diagnostic; it changes no factor and costs one dot product per group).
    In a distributed run it is the mean of the ranks' cosines (each on its
    own batch), not the cosine of the averaged gradients.

    Example::

        model = dict(balance=dict(type='GradientShareBalance', target=0.9))
        # LD's logit KD with a factor and a target of its own
        model = dict(balance=dict(type='GradientShareBalance', target=0.9,
                                  groups=dict(ld_kd=['ld_kd']),
                                  targets=dict(ld_kd=0.3)))

    Args:
        target: Target share of every group, in (0, 1).
        log_cosine: Also log each group's gradient cosine to the detection
            gradient at each update.
        **kwargs: The options of :class:`DistillBalance`.
    """

    def __init__(self, target: float = 0.9, log_cosine: bool = False,
                 **kwargs) -> None:
        super().__init__(target=target, **kwargs)
        if not isinstance(log_cosine, bool):
            raise TypeError('GradientShareBalance log_cosine must be True or '
                            f'False, got {log_cosine!r}.')
        self.log_cosine = log_cosine

    @property
    def extra_statistics(self) -> Tuple[str, ...]:
        return ('cos', ) if self.log_cosine else ()

    def _measure(self, groups: List[List[str]],
                 distill: Mapping[str, Tensor], losses: Mapping[str, object],
                 student: nn.Module,
                 due: bool) -> Optional[Tuple[Tensor, ...]]:
        if not due:
            return None
        params = [p for p in student.parameters() if p.requires_grad]
        det_loss = student_detection_loss(losses)
        det_grads = torch.autograd.grad(
            det_loss, params, retain_graph=True, allow_unused=True) \
            if det_loss.requires_grad else [None] * len(params)
        zero = params[0].new_zeros((), dtype=torch.float64)
        nan = torch.full_like(zero, float('nan'))
        det, own, cos = [], [], []
        for terms in groups:
            total = torch.stack([distill[t] for t in terms]).sum() \
                if terms else zero
            if not total.requires_grad:  # e.g. a term at zero this step
                det.append(zero)
                own.append(zero)
                cos.append(nan)
                continue
            grads = torch.autograd.grad(total, params, retain_graph=True,
                                        allow_unused=True)
            reached = [i for i, g in enumerate(grads) if g is not None]
            own.append(_l1(grads, reached, zero))
            det.append(_l1(det_grads, reached, zero))
            if self.log_cosine:
                cos.append(_cosine(grads, det_grads, reached, nan))
        out = (torch.stack(det), torch.stack(own))
        return out + (torch.stack(cos), ) if self.log_cosine else out
