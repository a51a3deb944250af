"""A per-image cap on the number of regions a region loss sees.

G-DetKD's SGFI pools every region on every student level; its cost grows
with the number of regions. :func:`regions_within_budget` keeps at most
``max_per_img`` regions of each image, the positive ones first and the
others in random order, in one vectorised pass over the whole batch.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def regions_within_budget(batch_idx: Tensor,
                          positive: Tensor,
                          max_per_img: Optional[int],
                          generator: Optional[torch.Generator] = None
                          ) -> Tensor:
    """Indices of the regions kept under a per-image budget.

    Within each image, positive regions rank before the others; ties are
    broken at random. The ``max_per_img`` best-ranked regions of each image
    are kept.

    Args:
        batch_idx: (K,) image index of each region (column 0 of the rois).
        positive: (K,) bool, whether a region is a positive (matched to a
            ground-truth box).
        max_per_img: The budget; ``None`` keeps every region.
        generator: Random generator for the order among equals (default:
            torch's global one; inside a :class:`Distiller` the step's
            stream of the methods, ``StepStreams``).

    Returns:
        Tensor: (K',) int64 indices into the K regions, ascending (the
        regions keep their order).
    """
    num = batch_idx.shape[0]
    device = batch_idx.device
    if positive.shape != (num, ):
        raise ValueError(f'positive must be ({num},) like batch_idx, got '
                         f'{tuple(positive.shape)}.')
    if max_per_img is None or num == 0:
        return torch.arange(num, device=device)
    if max_per_img < 1:
        raise ValueError(f'max_per_img must be >= 1 or None, got '
                         f'{max_per_img}.')
    image = batch_idx.long()
    # priority in [0, 2): positives in [1, 2), the others in [0, 1)
    priority = positive.to(torch.float64) + torch.rand(
        num, generator=generator, dtype=torch.float64).to(device)
    # images ascending, and within an image priority descending
    order = torch.argsort(image.to(torch.float64) * 4.0 - priority)
    sorted_image = image[order]
    counts = torch.bincount(sorted_image)
    starts = counts.cumsum(0) - counts
    rank = torch.arange(num, device=device) - starts[sorted_image]
    return order[rank < max_per_img].sort().values
