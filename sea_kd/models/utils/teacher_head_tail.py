"""Run the last layers of a dense head on features given from outside."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Sequence

import torch
from mmdet.models.dense_heads import (ATSSHead, FCOSHead, GFLHead,
                                      RetinaHead, RTMDetHead)
from torch import Tensor, nn
from torch.nn import functional as F

#: Heads whose ``forward_single`` runs ``cls_convs`` and ``reg_convs`` in
#: turn and then their predictors, the layout the tail runner relies on.
TOWER_HEADS = (RetinaHead, GFLHead, ATSSHead, FCOSHead)


def is_tower_head(head: nn.Module) -> bool:
    """Whether ``head`` is one of :data:`TOWER_HEADS` (RTMDet's, an ATSS
    subclass with per-level towers, is not)."""
    return isinstance(head, TOWER_HEADS) and not isinstance(head, RTMDetHead)


def check_tower_head(head: nn.Module, role: str, method: str) -> None:
    """Raise unless :func:`is_tower_head`."""
    if not is_tower_head(head):
        raise TypeError(
            f'{method} runs the teacher\'s head layers on the student\'s '
            f'features, which needs a head with a cls_convs/reg_convs tower '
            f'(RetinaHead, GFLHead, ATSSHead, FCOSHead); the {role}\'s head '
            f'is a {type(head).__name__}. Use a feature method (PKD, FI, '
            'CWD) for this pair.')


class _Given(nn.Module):
    """Stands in for a tower's first layers: returns its channel slice of
    the packed input, optionally through a ReLU."""

    def __init__(self, start: int, stop: int, relu: bool) -> None:
        super().__init__()
        self.start, self.stop, self.relu = start, stop, relu

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, self.start:self.stop]
        return F.relu(x) if self.relu else x


@contextmanager
def _towers_from(head: nn.Module, first: int, channels: int,
                 relu: bool) -> Iterator[None]:
    cls_convs, reg_convs = head.cls_convs, head.reg_convs
    head.cls_convs = nn.ModuleList(
        [_Given(0, channels, relu), *list(cls_convs)[first:]])
    head.reg_convs = nn.ModuleList(
        [_Given(channels, 2 * channels, relu), *list(reg_convs)[first:]])
    try:
        yield
    finally:
        head.cls_convs, head.reg_convs = cls_convs, reg_convs


def head_tail_forward(head: nn.Module, first: int, cls_feats: Sequence[Tensor],
                      reg_feats: Sequence[Tensor]) -> tuple:
    """The head's outputs when its towers start at layer ``first`` with the
    given features.

    Layers ``first`` and later of ``cls_convs`` / ``reg_convs`` run on
    ``relu(cls_feats[l])`` / ``relu(reg_feats[l])`` (the ReLU only when
    ``first > 0``: the features stand for a tower layer's activated output),
    followed by the head's own predictors, scales and output transforms: the
    head's ``forward`` runs, with its towers' first layers replaced for the
    span of the call. With ``first == 0`` the towers run whole on
    ``cls_feats`` (which must equal ``reg_feats``, the neck features).

    Gradients flow to the given features; the head's parameters get
    gradients only if they require them (a frozen teacher's do not).

    Args:
        head: A :data:`TOWER_HEADS` head.
        first: Index of the first tower layer to run.
        cls_feats / reg_feats: Per level (B, C, H, W).

    Returns:
        tuple: What ``head.forward`` returns (class logits, box outputs and
        any extras), one tensor per level each.
    """
    if first == 0:
        return head(list(cls_feats))
    channels = cls_feats[0].shape[1]
    packed: List[Tensor] = [torch.cat([c, r], dim=1)
                            for c, r in zip(cls_feats, reg_feats)]
    with _towers_from(head, first, channels, relu=True):
        return head(packed)
