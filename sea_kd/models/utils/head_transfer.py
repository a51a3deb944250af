"""Initialise one module from another where parameter shapes match."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn


@torch.no_grad()
def copy_matching_state(source: nn.Module,
                        target: nn.Module) -> Tuple[List[str], List[str]]:
    """Copy every parameter and buffer of ``source`` into ``target`` whose
    name and shape agree.

    Args:
        source: The module to copy from (e.g. the teacher's R-CNN bbox head).
        target: The module to initialise (the student's R-CNN bbox head).

    Returns:
        tuple: The names copied, and the names of ``target`` left as they
        were (absent from ``source`` or of another shape), both sorted.
    """
    src = source.state_dict()
    copied, skipped = [], []
    for name, value in target.state_dict(keep_vars=True).items():
        other = src.get(name)
        if other is not None and other.shape == value.shape:
            value.data.copy_(other.to(value.device, value.dtype))
            copied.append(name)
        else:
            skipped.append(name)
    return sorted(copied), sorted(skipped)
