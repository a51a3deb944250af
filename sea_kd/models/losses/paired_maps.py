"""The check shared by losses that compare student and teacher maps one to
one."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn


def paired_maps(loss_name: str, student: Sequence[Tensor],
                teacher: Sequence[Tensor],
                unit: str = 'level') -> List[Tuple[Tensor, Tensor]]:
    """``[(S_l, T_l), ...]`` after checking that both sides hold the same
    non-zero number of maps of equal shapes.

    Args:
        loss_name: Named in the errors.
        student, teacher: The maps, e.g. neck levels (B, C, H, W).
        unit: What one map is called in the errors (``'level'``, ``'map'``).

    Raises:
        ValueError: naming the loss, the map and both shapes.
    """
    if len(student) != len(teacher) or not student:
        raise ValueError(
            f'{loss_name} needs the same non-zero number of {unit}s, got '
            f'{len(student)} student and {len(teacher)} teacher {unit}s.')
    noun = 'feature ' if unit == 'level' else ''
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape != t.shape:
            raise ValueError(
                f'{unit.capitalize()} {i}: student {noun}{tuple(s.shape)} and '
                f'teacher {noun}{tuple(t.shape)} differ; adapt the student '
                'channels (adapter) and use the same strides.')
    return list(zip(student, teacher))


class LevelMeanLoss(nn.Module):
    """``λ · (1/L) · Σ_l level_loss(S_l, T_l)`` over paired maps, in fp32,
    the teacher side detached; subclasses give :meth:`level_loss`.

    Args:
        loss_weight: λ.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def level_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """The loss of one level's pair of (B, C, H, W) maps (fp32)."""
        raise NotImplementedError

    def forward(self, student_feats: Sequence[Tensor],
                teacher_feats: Sequence[Tensor]) -> Tensor:
        per_level = [self.level_loss(s.float(), t.detach().float())
                     for s, t in paired_maps(type(self).__name__,
                                             student_feats, teacher_feats)]
        return self.loss_weight * torch.stack(per_level).mean()
