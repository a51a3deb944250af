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
        self._count = 0

    def _register_running_buffers(self, num_groups: int) -> None:
        # the sums of the detection loss and of each group's terms since
        # the last update, and how many steps they hold
        self.register_buffer(
            'window_sum', torch.zeros(num_groups + 1, dtype=torch.float64))
        self.register_buffer('window_count',
                             torch.zeros((), dtype=torch.long))

    def _read_running_buffers(self) -> None:
        self._count = int(self.window_count)

    def _measure(self, groups: List[List[str]],
                 distill: Mapping[str, Tensor], losses: Mapping[str, object],
                 student: nn.Module,
                 due: bool) -> Optional[Tuple[Tensor, Tensor]]:
        with torch.no_grad():
            det = student_detection_loss(losses).double()
            own = torch.stack([
                torch.stack([distill[t] for t in terms]).sum().double()
                if terms else det.new_zeros(()) for terms in groups
            ])
            self.window_sum += torch.cat([det.reshape(1), own]).to(
                self.window_sum.device)
        self._count += 1
        self.window_count.fill_(self._count)
        if not due:
            return None
        means = self.window_sum / self._count
        self.window_sum.zero_()
        self._count = 0
        self.window_count.fill_(0)
        return means[0].expand(len(groups)), means[1:]
