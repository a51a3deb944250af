"""RoIAlign as a sparse matrix product, for fast CPU training.

mmcv's ``RoIAlign`` (average mode) computes, for every region ``k``,
channel ``c`` and output bin ``(p, q)``::

    out[k, c, p, q] = 1 / (g_y g_x)
                      Σ_{i<g_y, j<g_x} bilinear(F[b_k, c], y_{kpi}, x_{kqj})

with ``g_y × g_x`` regularly spaced samples per bin (``sampling_ratio``, or
``ceil(bin size)`` when it is 0). The bilinear weights do not depend on the
channel and factor into a row weight times a column weight, so the whole
operation is one sparse matrix ``W`` (regions·bins × B·H·W) times the
channels-last feature map (B·H·W × C)::

    out = W · F          grad_F = Wᵀ · grad_out

``W`` is built from the regions without a loop (separable 1-D weights,
outer product, zeros dropped). Its rows are already in CSR order; ``Wᵀ`` is
sorted only when a gradient is needed. The values equal mmcv's kernel up to
float rounding (tested against it), including regions that leave the
feature map and degenerate ones. On the CPU this is several times faster
than mmcv's kernel, mostly in the backward pass, which mmcv computes one
output element at a time; on CUDA mmcv's kernel is the better choice.
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple, Union

import mmcv.ops
import torch
from mmengine.utils import to_2tuple
from torch import Tensor, nn


def _axis_weights(start: Tensor, extent: Tensor, bins: int, grid: Tensor,
                  size: int) -> Tuple[Tensor, Tensor]:
    """1-D RoIAlign weights along one axis.

    Args:
        start, extent: (K,) region start and length in feature-map units.
        bins: Output bins along the axis.
        grid: (K,) samples per bin (0: none).
        size: Feature-map length along the axis.

    Returns:
        tuple: (K, bins, J) weights of the J consecutive feature indices
        starting at the (K, bins) int64 first index.
    """
    dtype = start.dtype
    bin_size = extent / bins
    max_grid = max(int(grid.max()), 1)
    sample = torch.arange(max_grid, dtype=dtype, device=start.device)
    step = torch.arange(bins, dtype=dtype, device=start.device)
    coord = (start[:, None, None] + step[:, None] * bin_size[:, None, None] +
             (sample + 0.5) * (bin_size / grid.clamp(min=1))[:, None, None])
    # mmcv: samples beyond one pixel outside the map contribute nothing
    valid = (sample < grid[:, None, None]) & (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().clamp(max=size - 1)
    frac = torch.where(low >= size - 1, torch.zeros_like(coord), coord - low)
    high = (low + 1).clamp(max=size - 1)
    weight = valid.to(dtype) / grid.clamp(min=1)[:, None, None]
    first = low.min(dim=2, keepdim=True).values
    # the samples of one bin span less than one bin (a reversed region's
    # bins have a negative size): ceil(|bin|) + 2 indices
    span = max(max_grid, math.ceil(float(bin_size.abs().max()))) + 2
    weights = start.new_zeros(start.shape[0], bins, span)
    weights.scatter_add_(2, (low - first).long(), (1 - frac) * weight)
    weights.scatter_add_(2, (high - first).long(), frac * weight)
    return weights, first[..., 0].long()


def roi_align_matrix(rois: Tensor,
                     feat_shape: Tuple[int, int, int],
                     output_size: Tuple[int, int],
                     spatial_scale: float,
                     sampling_ratio: int = 0,
                     aligned: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """The RoIAlign matrix ``W`` in CSR form.

    Args:
        rois: (K, 5) ``[batch_idx, x1, y1, x2, y2]`` in input pixels.
        feat_shape: ``(B, H, W)`` of the feature map.
        output_size: ``(h, w)`` bins.
        spatial_scale: Input pixels to feature units (1 / stride).
        sampling_ratio: Samples per bin and axis; 0: ``ceil(bin size)``.
        aligned: Shift by half a pixel (mmcv's ``aligned=True``).

    Returns:
        tuple: ``crow`` (K·h·w + 1,), ``col`` (nnz,) and ``value`` (nnz,);
        rows are ``(k, p, q)`` in order, columns ``(b, y, x)`` of the
        flattened map.
    """
    batch, height, width = feat_shape
    out_h, out_w = output_size
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:  # mmcv: legacy regions are at least one pixel
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    if sampling_ratio > 0:
        grid_y = torch.full_like(roi_h, float(sampling_ratio))
        grid_x = grid_y
    else:
        grid_y = torch.ceil(roi_h / out_h).clamp(min=0)
        grid_x = torch.ceil(roi_w / out_w).clamp(min=0)
    weight_y, first_y = _axis_weights(y1, roi_h, out_h, grid_y, height)
    weight_x, first_x = _axis_weights(x1, roi_w, out_w, grid_x, width)
    span_y, span_x = weight_y.shape[-1], weight_x.shape[-1]
    values = (weight_y[:, :, None, :, None] *
              weight_x[:, None, :, None, :]).reshape(-1, span_y * span_x)
    image = rois[:, 0].long()
    first = ((image[:, None, None] * height + first_y[:, :, None]) * width +
             first_x[:, None, :]).reshape(-1, 1)
    device = rois.device
    within = (torch.arange(span_y, device=device)[:, None] * width +
              torch.arange(span_x, device=device)).reshape(1, -1)
    nonzero = values != 0
    crow = values.new_zeros(values.shape[0] + 1, dtype=torch.long)
    crow[1:] = nonzero.sum(1).cumsum(0)
    return crow, (first + within)[nonzero], values[nonzero]


def _csr(crow: Tensor, col: Tensor, value: Tensor, shape) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(crow, col, value, shape)


class _SparseRoIAlignFunction(torch.autograd.Function):
    """``out = W · F`` with ``grad_F = Wᵀ · grad_out``."""

    @staticmethod
    def forward(ctx, feat_rows: Tensor, crow: Tensor, col: Tensor,
                value: Tensor) -> Tensor:
        ctx.save_for_backward(crow, col, value)
        ctx.num_cols = feat_rows.shape[0]
        matrix = _csr(crow, col, value, (crow.shape[0] - 1, ctx.num_cols))
        return matrix @ feat_rows

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        crow, col, value = ctx.saved_tensors
        num_rows, num_cols = crow.shape[0] - 1, ctx.num_cols
        row = torch.repeat_interleave(
            torch.arange(num_rows, device=crow.device), crow.diff())
        order = torch.argsort(col, stable=True)
        crow_t = crow.new_zeros(num_cols + 1)
        crow_t[1:] = torch.bincount(col, minlength=num_cols).cumsum(0)
        transposed = _csr(crow_t, row[order], value[order],
                          (num_cols, num_rows))
        return transposed @ grad_out.contiguous(), None, None, None


class SparseRoIAlign(nn.Module):
    """Average-mode RoIAlign with the same arguments and results as
    ``mmcv.ops.RoIAlign``, computed as a sparse matrix product (see the
    module docstring). No gradient flows to the regions.

    Args:
        output_size: ``h`` or ``(h, w)``.
        spatial_scale: 1 / stride of the feature map.
        sampling_ratio: Samples per bin and axis; 0: adaptive.
        aligned: mmcv's ``aligned``.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 0,
                 aligned: bool = True) -> None:
        super().__init__()
        self.output_size = tuple(int(v) for v in to_2tuple(output_size))
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """(B, C, H, W) features and (K, 5) regions -> (K, C, h, w)."""
        batch, channels, height, width = input.shape
        out_h, out_w = self.output_size
        if rois.shape[0] == 0:
            return input.new_zeros((0, channels, out_h, out_w)) + \
                input.sum() * 0
        rois = rois.detach().to(input.dtype)
        if bool(((rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])).any()):
            raise ValueError(
                'RoIAlign regions need x2 >= x1 and y2 >= y1 (like mmcv\'s '
                'kernel); fix the boxes, e.g. clamp them or drop reversed '
                'ones.')
        with torch.no_grad():
            crow, col, value = roi_align_matrix(
                rois, (batch, height, width), self.output_size,
                self.spatial_scale, self.sampling_ratio, self.aligned)
        rows = input.permute(0, 2, 3, 1).reshape(-1, channels)
        out = _SparseRoIAlignFunction.apply(rows, crow, col, value)
        return out.reshape(-1, out_h, out_w, channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale='
                f'{self.spatial_scale}, sampling_ratio={self.sampling_ratio},'
                f' aligned={self.aligned}')


def sparse_twin(layer: nn.Module) -> Optional[SparseRoIAlign]:
    """The :class:`SparseRoIAlign` computing what an average-mode
    ``mmcv.ops.RoIAlign`` computes, or ``None`` for any other layer."""
    if not isinstance(layer, mmcv.ops.RoIAlign) or \
            layer.pool_mode != 'avg' or layer.use_torchvision:
        return None
    return SparseRoIAlign(layer.output_size, layer.spatial_scale,
                          layer.sampling_ratio, layer.aligned)


@contextmanager
def sparse_roi_layers(extractor: nn.Module,
                      enabled: bool = True) -> Iterator[None]:
    """Within the block, an mmdet RoI extractor (``roi_layers``) computes
    its average-mode RoIAlign layers by :class:`SparseRoIAlign`.

    Used for the frozen teacher's region forward on the CPU: same values,
    less time. Other layers stay as they are; the original layers are put
    back on exit.
    """
    layers = getattr(extractor, 'roi_layers', None)
    if not enabled or layers is None:
        yield
        return
    originals = list(layers)
    try:
        for i, layer in enumerate(originals):
            twin = sparse_twin(layer)
            if twin is not None:
                layers[i] = twin
        yield
    finally:
        for i, layer in enumerate(originals):
            layers[i] = layer
