"""CWD: channel-wise distillation of spatial distributions."""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn


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
        if len(student_maps) != len(teacher_maps) or not student_maps:
            raise ValueError(
                f'CWDLoss needs the same non-zero number of maps, got '
                f'{len(student_maps)} student and {len(teacher_maps)} '
                'teacher maps.')
        total = 0.
        for level, (s, t) in enumerate(zip(student_maps, teacher_maps)):
            if s.shape != t.shape:
                raise ValueError(
                    f'Map {level}: student {tuple(s.shape)} and teacher '
                    f'{tuple(t.shape)} differ; adapt the student channels '
                    '(adapter) and use the same strides.')
            n, c = s.shape[:2]
            log_p_s = F.log_softmax(s.float().flatten(2) / self.tau, dim=2)
            log_p_t = F.log_softmax(
                t.detach().float().flatten(2) / self.tau, dim=2)
            kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
            total = total + kl * self.tau**2 / (n * c)
        return self.loss_weight * total
