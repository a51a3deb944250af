"""Σ over rows and classes of an element-wise loss, in row blocks."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

#: ``terms(z, *aux, grad) -> (values, d values / d z or None)``, element-wise
ElementTerms = Callable[..., Tuple[Tensor, Optional[Tensor]]]


class BlockedRowSum(torch.autograd.Function):
    """``Σ_{i,c} r_i · f(z_ic, a_ic, ...)`` and its gradient in ``z``.

    Dense distillation losses on class logits (ADL, TBD's HD) apply a dozen
    element-wise steps to (N, C) tensors; at COCO scale N·C is about
    3·10⁷ per batch (RetinaNet: ~2·10⁵ anchors per image, 80 classes).
    Autograd keeps every intermediate for the backward pass, and each step
    allocates a fresh tensor of that size. Here ``terms`` gives the values
    and their derivative in closed form, in one pass over blocks of
    :attr:`block_rows` rows; only the derivative, one (N, C) tensor, is
    kept for the backward pass, which scales it by the incoming gradient.
    Python loops over row blocks only (a memory bound, not a loop over
    images, classes or levels).

    Args (of :meth:`apply`):
        z: (N, C) student logits (the only input with a gradient).
        row_weight: (N,) weights ``r_i`` or ``None`` for ones.
        terms: The element-wise function (see :data:`ElementTerms`).
        *aux: (N, C) tensors without gradient (targets, teacher values).
    """

    #: rows per block (about 5 MB per float32 temporary at 80 classes)
    block_rows = 16384

    @staticmethod
    def forward(ctx, z: Tensor, row_weight: Optional[Tensor],
                terms: ElementTerms, *aux: Tensor) -> Tensor:
        # one pass: the values and, when a gradient is needed, the
        # derivative (kept as one (N, C) tensor instead of recomputing)
        need_grad = ctx.needs_input_grad[0]
        grad = torch.empty_like(z) if need_grad else None
        total = z.new_zeros(())
        for start in range(0, z.shape[0], BlockedRowSum.block_rows):
            rows = slice(start, start + BlockedRowSum.block_rows)
            values, d_z = terms(z[rows], *(a[rows] for a in aux),
                                grad=need_grad)
            values = values.sum(dim=1)
            if row_weight is not None:
                values = values * row_weight[rows]
                if need_grad:
                    d_z = d_z * row_weight[rows, None]
            if need_grad:
                grad[rows] = d_z
            total = total + values.sum()
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, grad_total: Tensor):
        grad, = ctx.saved_tensors
        return (grad * grad_total, None, None) + (None, ) * (
            len(ctx.needs_input_grad) - 3)
