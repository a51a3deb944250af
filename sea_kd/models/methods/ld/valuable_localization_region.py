"""LD's valuable localization region (VLR): the anchors just below the ATSS
threshold of a ground-truth box."""
from __future__ import annotations

from typing import Sequence

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor


def _centres(boxes: Tensor) -> Tensor:
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def distance_iou(anchors: Tensor, gts: Tensor, eps: float = 1e-6) -> Tensor:
    """DIoU of every anchor with every box: IoU − ρ²/c², ρ the distance of
    the centres, c the diagonal of the smallest enclosing box.

    Args:
        anchors: (N, 4).
        gts: (B, G, 4).

    Returns:
        Tensor: (B, N, G).
    """
    iou = bbox_overlaps(anchors.expand(gts.shape[0], -1, -1), gts)
    a, g = anchors[None, :, None], gts[:, None]
    lt = torch.minimum(a[..., :2], g[..., :2])
    rb = torch.maximum(a[..., 2:], g[..., 2:])
    diag = (rb - lt).pow(2).sum(-1) + eps
    rho = (_centres(a) - _centres(g)).pow(2).sum(-1)
    return iou - rho / diag


def vlr_weights(anchors: Tensor, level_sizes: Sequence[int], gts: Tensor,
                gt_valid: Tensor, topk: int = 9, low: float = 0.25) -> Tensor:
    """Per anchor, the IoU with the ground truth whose VLR it lies in, else 0.

    Following HikariTJU/LD@4287990 (``ATSSAssigner.get_vlr_region``): per
    box ``g`` the ATSS threshold ``θ_g`` is the mean plus the (unbiased)
    standard deviation of the IoUs of the ``topk`` anchors per level whose
    centres are closest to ``g``'s; anchor ``i`` is in ``g``'s VLR when
    ``low·θ_g ≤ DIoU(i, g) < θ_g``; its weight is the largest IoU over the
    boxes whose VLR holds it::

        v_i = max_{g: low·θ_g ≤ DIoU(i,g) < θ_g} IoU(i, g)   (0 if none)

    All images, boxes and levels at once (levels padded to the largest).

    Args:
        anchors: (N, 4) anchors of all levels, level-major.
        level_sizes: Anchors per level (sum N).
        gts: (B, G, 4) ground-truth boxes, padded.
        gt_valid: (B, G) bool, which boxes are real.
        topk: Anchors per level per box for the threshold (ATSS's k).
        low: The region's lower bound as a fraction of ``θ_g``.

    Returns:
        Tensor: (B, N) weights in [0, 1].
    """
    batch, num = gts.shape[0], anchors.shape[0]
    if gts.shape[1] == 0 or num == 0:
        return anchors.new_zeros(batch, num)
    iou = bbox_overlaps(anchors.expand(batch, -1, -1), gts)        # B,N,G
    diou = distance_iou(anchors, gts)
    dist = (_centres(anchors)[None, :, None] -
            _centres(gts)[:, None]).pow(2).sum(-1).sqrt()          # B,N,G
    # levels padded to the largest: (L, n_max) indices into N
    sizes = torch.as_tensor(list(level_sizes), device=anchors.device)
    starts = torch.cumsum(sizes, 0) - sizes
    n_max = int(sizes.max())
    offset = torch.arange(n_max, device=anchors.device)
    real = offset[None] < sizes[:, None]                           # L,n_max
    index = (starts[:, None] + offset[None]).clamp(max=num - 1)
    padded = dist[:, index].masked_fill(~real[None, :, :, None],
                                        float('inf'))              # B,L,n,G
    k = min(topk, n_max)
    picked_dist, picked = padded.topk(k, dim=2, largest=False)     # B,L,k,G
    chosen = torch.isfinite(picked_dist)
    cand = iou[:, index].gather(2, picked).masked_fill(~chosen, 0)
    count = chosen.sum((1, 2)).clamp(min=2)                         # B,G
    mean = cand.sum((1, 2)) / chosen.sum((1, 2)).clamp(min=1)
    var = ((cand - mean[:, None, None]).pow(2) * chosen).sum((1, 2)) / \
        (count - 1)
    thr = (mean + var.sqrt())[:, None]                             # B,1,G
    inside = (diou >= low * thr) & (diou < thr) & gt_valid[:, None]
    best = iou.masked_fill(~inside, -1.0).max(dim=-1).values
    return best.clamp(min=0)
