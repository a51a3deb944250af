"""A dense head's features at the positions of regions.

G-DetKD's contrastive term needs a representation of every region for a
dense student (RetinaNet, FCOS), which has no per-region head. One reading
(of the third-party re-implementations) takes the student head's own
classification-tower feature at the position that predicts the region:
the level its size belongs to and the feature cell holding its centre.
:func:`features_at_regions` gathers those vectors for all regions and
levels in one indexing operation.

Level rule (that of mmdet's RoI extractors, with the first level's scale)::

    l(box) = clamp(floor(log2(sqrt(w·h) / s_0 + 1e-6)), 0, L - 1)

so level 0 takes boxes smaller than ``2·s_0``, level 1 up to ``4·s_0``, and
so on. :func:`head_finest_scale` reads ``s_0`` off the head: the smallest
anchor of the first level for anchor heads (RetinaNet: ``octave_base_scale
× stride``), half the first regress range for FCOS, else 4 × the first
stride. Cell: ``(floor(c_y / s_l), floor(c_x / s_l))``, clamped into
the map, for the centre ``c`` and the level's stride ``s_l``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...detectors.strides import level_strides


def region_levels(rois: Tensor, num_levels: int,
                  finest_scale: float) -> Tensor:
    """(K,) int64 level of each region, by its scale ``sqrt(w·h)``.

    Args:
        rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]``.
        num_levels: L.
        finest_scale: ``s_0``; boxes below ``2·s_0`` go to level 0.
    """
    if finest_scale <= 0:
        raise ValueError(f'finest_scale must be > 0, got {finest_scale}.')
    wh = (rois[:, 3:5] - rois[:, 1:3]).clamp(min=0)
    scale = (wh[:, 0] * wh[:, 1]).sqrt()
    level = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return level.clamp(0, num_levels - 1).long()


def head_finest_scale(head: nn.Module) -> float:
    """``s_0`` of the level rule for a dense head, in pixels.

    - anchor heads (``AnchorGenerator``): the smallest anchor size of the
      first level, ``min(scales) × base_sizes[0]``;
    - FCOS-like heads (``regress_ranges``): half the upper bound of the
      first level's range;
    - otherwise 4 × the first stride.
    """
    generator = head.prior_generator
    stride = level_strides(head)[0]
    scales = getattr(generator, 'scales', None)
    base_sizes = getattr(generator, 'base_sizes', None)
    if scales is not None and base_sizes:
        return float(min(float(x) for x in scales)) * float(base_sizes[0])
    ranges = getattr(head, 'regress_ranges', None)
    if ranges:
        return float(ranges[0][1]) / 2
    return 4.0 * stride


def features_at_regions(feats: Sequence[Tensor],
                        rois: Tensor,
                        strides: Sequence[float],
                        finest_scale: Optional[float] = None) -> Tensor:
    """The feature vector of the cell holding each region's centre, on the
    level its scale maps to.

    Args:
        feats: Per level (B, C, H_l, W_l), e.g. a dense head's last
            classification-tower output.
        rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]`` in input pixels.
        strides: Per level stride of ``feats``.
        finest_scale: ``s_0`` of the level rule; ``None``: 4 × the first
            stride.

    Returns:
        Tensor: (K, C), with the gradient to ``feats``.
    """
    if len(feats) != len(strides):
        raise ValueError(f'{len(feats)} feature levels but {len(strides)} '
                         'strides.')
    if finest_scale is None:
        finest_scale = 4.0 * float(strides[0])
    first = feats[0]
    batch, channels = first.shape[:2]
    device = first.device
    if rois.numel() == 0:
        return first.new_zeros((0, channels))
    heights = torch.tensor([f.shape[2] for f in feats], device=device)
    widths = torch.tensor([f.shape[3] for f in feats], device=device)
    stride = torch.tensor([float(s) for s in strides], device=device,
                          dtype=rois.dtype)
    # all levels side by side: (B, C, Σ H_l·W_l)
    flat = torch.cat([f.flatten(2) for f in feats], dim=2)
    offsets = torch.cumsum(heights * widths, 0) - heights * widths

    level = region_levels(rois, len(feats), finest_scale)
    centre = (rois[:, 1:3] + rois[:, 3:5]) / 2
    s = stride[level]
    col = torch.floor(centre[:, 0] / s).long()
    row = torch.floor(centre[:, 1] / s).long()
    h, w = heights[level], widths[level]
    col = torch.minimum(col.clamp(min=0), w - 1)
    row = torch.minimum(row.clamp(min=0), h - 1)
    position = offsets[level] + row * w + col
    image = rois[:, 0].long()
    if int(image.max()) >= batch or int(image.min()) < 0:
        raise ValueError(f'Region image indices {image.unique().tolist()} '
                         f'outside the batch of {batch} feature maps.')
    return flat[image, :, position]
