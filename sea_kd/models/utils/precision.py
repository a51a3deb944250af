"""Floating-point precision of tensors captured under mixed precision.

Under autocast the recorded features and outputs of both detectors may be
float16 or bfloat16, while the distillation losses and modules (adapters,
projectors) run in float32 with autocast off.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor


def at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in float32, or unchanged when already float32 or wider
    (float64 stays float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def levels_at_least_fp32(levels: Sequence[Tensor]) -> List[Tensor]:
    """:func:`at_least_fp32` of every tensor of a per-level sequence."""
    return [at_least_fp32(x) for x in levels]
