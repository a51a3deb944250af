"""Balancing by loss ratio: each group's loss against the detection loss."""
from __future__ import annotations

from typing import List, Mapping, Optional, Tuple

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .distill_balance import DistillBalance, student_detection_loss


@MODELS.register_module()
class LossRatioBalance(DistillBalance):
    """Keep each group's loss at a target share of the loss signal.

    The statistics are the loss values themselves, averaged over the
    ``interval`` steps before each update: :math:`a_g` the mean of the
    group's unbalanced terms, :math:`d` the mean of the student's detection
    loss (every term whose name contains ``'loss'``, as mmengine sums it).
    The share is :math:`f_g a_g / (d + f_g a_g)`; see
    :func:`~sea_kd.models.balance.distill_balance.updated_factors`.

    It costs one sum per step and one host synchronisation per update, but
    a loss value says little about the gradient it gives (a KD term over 80
    classes and an L2 term over a feature map of the same value push the
    student very differently): :class:`GradientShareBalance` measures that.

    Example::

        model = dict(balance=dict(type='LossRatioBalance', target=0.5))

    Args:
        target: Target share of every group, in (0, 1).
        **kwargs: The options of :class:`DistillBalance`.
    """

    def __init__(self, target: float = 0.5, **kwargs) -> None:
        super().__init__(target=target, **kwargs)
        self._sums: Optional[Tensor] = None
        self._count = 0

    def _measure(self, group_terms: Mapping[str, List[str]],
                 distill: Mapping[str, Tensor], losses: Mapping[str, object],
                 student: nn.Module,
                 due: bool) -> Optional[Tuple[Tensor, Tensor]]:
        with torch.no_grad():
            det = student_detection_loss(losses).float()
            own = torch.stack([
                torch.stack([distill[t].float() for t in terms]).sum()
                for terms in group_terms.values()
            ])
            step = torch.cat([det.reshape(1), own]).double()
        self._sums = step if self._sums is None else \
            self._sums.to(step.device) + step
        self._count += 1
        if not due:
            return None
        means = self._sums / self._count
        self._sums, self._count = None, 0
        return means[0].expand(len(group_terms)), means[1:]

    def _running_state(self) -> dict:
        return dict(count=self._count, sums=None if self._sums is None else
                    self._sums.tolist())

    def _load_running_state(self, state: dict) -> None:
        self._count = int(state.get('count', 0))
        sums = state.get('sums')
        self._sums = None if sums is None else torch.tensor(
            sums, dtype=torch.float64)
