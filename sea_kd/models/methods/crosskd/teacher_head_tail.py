"""Run the last layers of a dense head on features given from outside."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ...detectors import DenseHeadView, dense_head_view


def _view(head: nn.Module) -> DenseHeadView:
    """The head's view; the base view's layout for a head of no known
    family."""
    return dense_head_view(head) or DenseHeadView(head)


def is_tower_head(head: nn.Module) -> bool:
    """Whether the head's forward runs a classification and a box tower in
    turn and then its predictors, the layout the tail runner relies on
    (its view's ``has_towers``): one tower shared by the levels
    (``cls_convs``, ``reg_convs``), or one per level (``RTMDetSepBNHead``,
    whose ``cls_convs[level]`` are the level's layers; ``YOLOXHead``, whose
    are ``multi_level_cls_convs[level]``). RTMDet's instance heads (mask
    kernels and a mask feature from the neck) are not tower heads."""
    return _view(head).has_towers


def tower_names(head: nn.Module) -> tuple:
    """Attribute names of the head's classification and box towers."""
    return _view(head).tower_attributes


def per_level_towers(head: nn.Module) -> bool:
    """Whether each level has its own tower (``towers[level]``)."""
    towers = getattr(head, tower_names(head)[0])
    return len(towers) > 0 and \
        isinstance(towers[0], (nn.ModuleList, nn.Sequential))


def tower_depth(head: nn.Module) -> int:
    """Number of layers of the head's classification tower."""
    towers = getattr(head, tower_names(head)[0])
    return len(towers[0]) if per_level_towers(head) else len(towers)


def activates_given_features(head: nn.Module) -> bool:
    """Whether features standing for a tower layer's output go through a
    ReLU: when the head's layers end in one (its ``act_cfg``, where it has
    one; RetinaNet, ATSS, FCOS and GFL build ReLU layers). RTMDet's layers
    end in SiLU and YOLOX's in Swish by default, whose outputs may be
    negative, so their given features enter as they are."""
    return _view(head).activates_given_features()


def check_tower_head(head: nn.Module, role: str, method: str) -> None:
    """Raise unless :func:`is_tower_head`."""
    if not is_tower_head(head):
        raise TypeError(
            f'{method} runs the teacher\'s head layers on the student\'s '
            f'features, which needs a head with a classification and a box '
            f'tower (RetinaHead, GFLHead, ATSSHead, FCOSHead, RTMDet\'s '
            f'detection heads, YOLOXHead); '
            f'the {role}\'s head is a {type(head).__name__}. Use a feature '
            'method (PKD, FI, CWD) for this pair.')


class _Given(nn.Module):
    """Stands in for a tower's first layers: returns its channel slice of
    the packed input, optionally through a ReLU."""

    def __init__(self, start: int, stop: int, relu: bool) -> None:
        super().__init__()
        self.start, self.stop, self.relu = start, stop, relu

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, self.start:self.stop]
        return F.relu(x) if self.relu else x


def _tail(layers: nn.Module, first: int, given: nn.Module) -> nn.Module:
    """``given`` and ``layers[first:]``, in the container type of ``layers``
    (a ``ModuleList`` the head loops over, or YOLOX's ``Sequential`` it
    calls)."""
    return type(layers)(given, *list(layers)[first:]) \
        if isinstance(layers, nn.Sequential) else \
        nn.ModuleList([given, *list(layers)[first:]])


@contextmanager
def _towers_from(head: nn.Module, first: int, channels: int,
                 relu: bool) -> Iterator[None]:
    names = tower_names(head)
    originals = [getattr(head, name) for name in names]
    given = (_Given(0, channels, relu), _Given(channels, 2 * channels, relu))
    per_level = per_level_towers(head)
    for name, towers, stand_in in zip(names, originals, given):
        setattr(head, name, nn.ModuleList(
            [_tail(level, first, stand_in) for level in towers])
            if per_level else _tail(towers, first, stand_in))
    try:
        yield
    finally:
        for name, towers in zip(names, originals):
            setattr(head, name, towers)


def head_tail_forward(head: nn.Module, first: int, cls_feats: Sequence[Tensor],
                      reg_feats: Sequence[Tensor]) -> tuple:
    """The head's outputs when its towers start at layer ``first`` with the
    given features.

    Layers ``first`` and later of the classification / box towers
    (:func:`tower_names`; each level's tower, for heads with one per level)
    run on
    ``relu(cls_feats[l])`` / ``relu(reg_feats[l])`` (the ReLU only when
    ``first > 0``: the features stand for a tower layer's activated output;
    none for RTMDet and YOLOX, :func:`activates_given_features`),
    followed by the head's own predictors, scales and output transforms: the
    head's ``forward`` runs, with its towers' first layers replaced for the
    span of the call. With ``first == 0`` the towers run whole on
    ``cls_feats`` (which must equal ``reg_feats``, the neck features).

    Gradients flow to the given features; the head's parameters get
    gradients only if they require them (a frozen teacher's do not).

    Args:
        head: A head whose view has towers (:func:`is_tower_head`).
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
    with _towers_from(head, first, channels,
                      relu=activates_given_features(head)):
        return head(packed)
