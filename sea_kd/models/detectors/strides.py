"""Strides of dense prior generators, as mmdet stores them.

mmdet's prior generators hold each level's stride as a number or a
``(w, h)`` pair; these helpers give them one form.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from torch import nn

from .detector_kind import is_backbone_teacher

StrideLike = Union[int, float, Sequence[Union[int, float]]]


def normalize_strides(strides: Sequence[StrideLike]) -> List[Tuple[float,
                                                                   float]]:
    """Strides as ``(s_x, s_y)`` pairs; a single number means both axes.

    mmdet's prior generators store strides as ``(w, h)`` pairs, which is
    the order kept here.
    """
    out = []
    for s in strides:
        if isinstance(s, (int, float)):
            out.append((float(s), float(s)))
        else:
            s = tuple(s)
            if len(s) != 2:
                raise ValueError(f'A stride is a number or an (x, y) pair, '
                                 f'got {s}.')
            out.append((float(s[0]), float(s[1])))
    return out


def level_strides(head: nn.Module) -> List[float]:
    """The horizontal stride of each level of a dense head's prior
    generator, in pixels."""
    return [s[0] for s in normalize_strides(head.prior_generator.strides)]


def prior_strides_of(detector: nn.Module) -> Optional[List[Tuple[float,
                                                                 float]]]:
    """Strides of the detector's dense prior generator, ``(s_x, s_y)``.

    Looks at ``bbox_head`` (RetinaNet, FCOS, ATSS...) then ``rpn_head``
    (Faster/Mask R-CNN); ``None`` when neither has a prior generator. A
    backbone teacher's strides are those of its feature maps
    (``feature_strides``).
    """
    if is_backbone_teacher(detector):
        return normalize_strides(detector.feature_strides)
    for name in ('bbox_head', 'rpn_head'):
        generator = getattr(getattr(detector, name, None), 'prior_generator',
                            None)
        if generator is not None:
            return normalize_strides(generator.strides)
    return None
