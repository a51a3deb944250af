"""Flattening dense-head outputs into the assigner's order."""
from __future__ import annotations

from typing import List

import torch
from torch import Tensor


def flatten_level_logits(cls_scores: List[Tensor],
                         num_classes: int) -> Tensor:
    """Per-level (B, A*C, H, W) logits -> (B*N, C) rows.

    Rows are ordered image → level → H → W → anchor, the order of the
    flattened ``DenseTargets`` of the same batch.
    """
    return flatten_level_maps(cls_scores, num_classes).reshape(
        -1, num_classes)


def flatten_level_maps(maps: List[Tensor], dim: int) -> Tensor:
    """Per-level (B, A*dim, H, W) maps -> (B, N, dim), N = Σ_l H_l·W_l·A.

    Positions are ordered level → H → W → anchor within each image, as the
    dense heads flatten their outputs and targets.
    """
    batch = maps[0].shape[0]
    per_level = [m.permute(0, 2, 3, 1).reshape(batch, -1, dim) for m in maps]
    return torch.cat(per_level, dim=1)


def level_priors(head, maps: List[Tensor]) -> Tensor:
    """The head's priors for the levels of ``maps``, concatenated:
    (N, 4) anchors or (N, 2) points, ordered level → H → W → anchor like
    :func:`flatten_level_maps` (the same for every image)."""
    priors = head.prior_generator.grid_priors(
        [m.shape[-2:] for m in maps], device=maps[0].device)
    return torch.cat(priors)
