"""FGD: focal and global distillation of neck features.

The pieces of FGD (Yang et al., "Focal and Global Knowledge Distillation
for Detectors", CVPR 2022) for one feature level, each a batched tensor
operation: the attention maps, the foreground/background masks scaled by
box area, the focal (masked, attention-weighted) feature loss, the
attention loss and the global-context block of the global loss. The method
that sums them over the neck levels is :class:`sea_kd.models.methods.FGD`.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from mmengine.model import constant_init, kaiming_init
from torch import Tensor, nn


def fgd_attention(feat: Tensor, temperature: float,
                  relative: bool = False) -> Tuple[Tensor, Tensor]:
    """Spatial and channel attention of a feature map.

    With ``F`` of shape (N, C, H, W) and ``T`` the temperature::

        A^S = H·W · softmax_{h,w}( (1/C) Σ_c |F_{c,h,w}| / T )    (N, H, W)
        A^C = C · softmax_c( (1/HW) Σ_{h,w} |F_{c,h,w}| / T )      (N, C)

    Both average 1 over their axis. With ``relative``, ``T`` is taken
    relative to the map's scale: each image's ``|F|`` is first divided by
    its mean ``m = (1/CHW) Σ_{c,h,w} |F_{c,h,w}|`` (the same as using
    ``T·m`` as the temperature), so that ``F`` and ``k·F`` have the same
    attention for any ``k > 0``; a map of zeros gets uniform attention.
    Give float32 maps with ``relative``: the scaled values reach ``C·H·W``,
    beyond float16's range on large maps (:class:`FGD` casts first).

    Args:
        feat: (N, C, H, W) feature map.
        temperature: ``T``.
        relative: Scale ``T`` by each image's mean ``|F|``.

    Returns:
        ``(A^S, A^C)``.
    """
    n, c, h, w = feat.shape
    value = feat.abs()
    if relative:
        scale = value.mean((1, 2, 3), keepdim=True)
        value = value / scale.clamp(min=1e-12)
    spatial = F.softmax(value.mean(1).reshape(n, -1) / temperature, dim=1)
    channel = F.softmax(value.mean((2, 3)) / temperature, dim=1)
    return (h * w) * spatial.reshape(n, h, w), c * channel


def focal_box_masks(boxes: Tensor, valid: Tensor, feat_size: Tuple[int, int],
                    stride: Tuple[float, float]) -> Tuple[Tensor, Tensor]:
    """Foreground and background masks of one level, scaled by box area.

    A box ``(x1, y1, x2, y2)`` in input pixels covers the cells
    ``⌊x1/s_x⌋ ≤ i ≤ ⌈x2/s_x⌉`` and ``⌊y1/s_y⌋ ≤ j ≤ ⌈y2/s_y⌉`` of the
    level (the authors' rule, both ends included), ``H_r·W_r`` cells in
    all. Then::

        M^fg_{j,i} = max over the boxes r covering (i, j) of 1/(H_r·W_r)
        M^bg_{j,i} = [M^fg_{j,i} = 0] / Σ_{j,i} [M^fg_{j,i} = 0]

    per image (``M^bg`` stays 0 where every cell is foreground).

    Args:
        boxes: (B, G, 4) ground-truth boxes in input pixels, padded.
        valid: (B, G) bool, False for padding.
        feat_size: ``(H, W)`` of the level.
        stride: ``(s_x, s_y)`` of the level.

    Returns:
        ``(M^fg, M^bg)``, each (B, H, W) float32.
    """
    h, w = feat_size
    sx, sy = stride
    x1 = torch.floor(boxes[..., 0] / sx)
    x2 = torch.ceil(boxes[..., 2] / sx)
    y1 = torch.floor(boxes[..., 1] / sy)
    y2 = torch.ceil(boxes[..., 3] / sy)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)  # (B, G)
    cols = torch.arange(w, device=boxes.device, dtype=boxes.dtype)
    rows = torch.arange(h, device=boxes.device, dtype=boxes.dtype)
    in_x = (cols >= x1[..., None]) & (cols <= x2[..., None])  # (B, G, W)
    in_y = (rows >= y1[..., None]) & (rows <= y2[..., None])  # (B, G, H)
    inside = in_y[..., :, None] & in_x[..., None, :] & valid[..., None, None]
    weight = inside.float() / area.clamp(min=1)[..., None, None]
    fg = weight.amax(1) if boxes.shape[1] else \
        boxes.new_zeros(boxes.shape[0], h, w)
    bg = (fg == 0).float()
    bg = bg / bg.sum((1, 2), keepdim=True).clamp(min=1)
    return fg, bg


def focal_feature_loss(student: Tensor, teacher: Tensor, fg: Tensor,
                       bg: Tensor, spatial_t: Tensor,
                       channel_t: Tensor) -> Tuple[Tensor, Tensor]:
    """The focal feature terms, weighted by the teacher's attention::

        L_fg = (1/N) Σ_{n,c,h,w} M^fg_{n,h,w} A^S_{n,h,w} A^C_{n,c}
                                 (F^T_{n,c,h,w} − F^S_{n,c,h,w})²
        L_bg = the same with M^bg

    Args:
        student: (N, C, H, W) student feature, aligned to the teacher's
            channels.
        teacher: (N, C, H, W) teacher feature.
        fg: (N, H, W) ``M^fg`` (:func:`focal_box_masks`).
        bg: (N, H, W) ``M^bg``.
        spatial_t: (N, H, W) the teacher's ``A^S`` (:func:`fgd_attention`).
        channel_t: (N, C) the teacher's ``A^C``.

    Returns:
        ``(L_fg, L_bg)``.
    """
    weighted = (student - teacher).pow(2) * \
        spatial_t[:, None] * channel_t[:, :, None, None]
    per_pixel = weighted.sum(1)  # (N, H, W)
    n = student.shape[0]
    return (per_pixel * fg).sum() / n, (per_pixel * bg).sum() / n


def attention_loss(spatial_s: Tensor, channel_s: Tensor, spatial_t: Tensor,
                   channel_t: Tensor) -> Tensor:
    """``L_at = (1/N) (Σ |A^C_t − A^C_s| + Σ |A^S_t − A^S_s|)``, the student's
    attention taken from its aligned feature.

    Args:
        spatial_s: (N, H, W) the student's ``A^S``.
        channel_s: (N, C) the student's ``A^C``.
        spatial_t: (N, H, W) the teacher's ``A^S``.
        channel_t: (N, C) the teacher's ``A^C``.

    Returns:
        The scalar ``L_at``.
    """
    n = spatial_s.shape[0]
    return ((channel_t - channel_s).abs().sum() +
            (spatial_t - spatial_s).abs().sum()) / n


class GlobalContextBlock(nn.Module):
    """The GcBlock of FGD's global loss: ``R(F) = F + W_2 ReLU(LN(W_1 c))``
    with the context ``c = Σ_{h,w} softmax_{h,w}(W_k F) · F``.

    ``W_k`` (1×1 conv to one channel) starts from Kaiming-normal (fan in)
    weights and ``W_2`` from zeros, so ``R`` starts as the identity (the
    authors' initialisation). FGD trains one block for the student and one
    for the teacher feature of each level; both are dropped at export.

    Args:
        channels: Channels of the feature (at least 2).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f'A global-context block needs at least 2 '
                             f'channels, got {channels}.')
        self.context_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=1),
            nn.LayerNorm([channels // 2, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels, kernel_size=1))
        kaiming_init(self.context_mask, mode='fan_in')
        constant_init(self.transform[-1], 0)

    def forward(self, x: Tensor) -> Tensor:
        """``R(x)`` for an (N, C, H, W) ``x``, of the same shape."""
        n, c, h, w = x.shape
        weights = F.softmax(self.context_mask(x).reshape(n, h * w, 1), dim=1)
        context = torch.bmm(x.reshape(n, c, h * w), weights)  # (N, C, 1)
        return x + self.transform(context.reshape(n, c, 1, 1))


def global_loss(student: Tensor, teacher: Tensor,
                block_s: GlobalContextBlock,
                block_t: GlobalContextBlock) -> Tensor:
    """``L_global = (1/N) Σ (R_t(F^T) − R_s(F^S))²``.

    Args:
        student: (N, C, H, W) ``F^S``, aligned to the teacher's channels.
        teacher: (N, C, H, W) ``F^T``.
        block_s: ``R_s``.
        block_t: ``R_t``.

    Returns:
        The scalar ``L_global``.
    """
    return (block_s(student) - block_t(teacher)).pow(2).sum() / \
        student.shape[0]
