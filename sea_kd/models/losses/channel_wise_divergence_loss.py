"""CWD: channel-wise distillation of spatial distributions."""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from .paired_maps import paired_maps


@MODELS.register_module()
class CWDLoss(nn.Module):
    """Channel-wise distillation (CWD, Shu et al., ICCV 2021).

    Each channel of each map becomes a distribution over its H·W positions
    by a softmax with temperature τ; the student's distributions follow the
    teacher's by KL divergence::

        L_cwd = λ · Σ_l τ² / (N·C_l) · Σ_{n,c} KL(p^t_{l,n,c} ‖ p^s_{l,n,c}),
        p_{l,n,c} = softmax_{h,w}(F_l[n, c] / τ)

    Maps (levels) are summed, as the authors' per-level losses are.
    Computed in fp32 whatever the input dtype; the teacher side is detached.

    Args:
        tau: τ.
        loss_weight: λ (the authors' detection configs: τ = 1, λ = 10).
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'CWDLoss needs a temperature tau > 0, got '
                             f'{tau}.')
        self.tau = tau
        self.loss_weight = loss_weight

    def forward(self, student_maps: Sequence[Tensor],
                teacher_maps: Sequence[Tensor]) -> Tensor:
        total = 0.
        for s, t in paired_maps('CWDLoss', student_maps, teacher_maps,
                                unit='map'):
            n, c = s.shape[:2]
            log_p_s = F.log_softmax(s.float().flatten(2) / self.tau, dim=2)
            log_p_t = F.log_softmax(
                t.detach().float().flatten(2) / self.tau, dim=2)
            kl = F.kl_div(log_p_s, log_p_t, reduction='sum', log_target=True)
            total = total + kl * self.tau**2 / (n * c)
        return self.loss_weight * total
