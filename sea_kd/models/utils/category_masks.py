"""Per-pixel category masks of FPN levels from ground-truth boxes or masks.

Every pixel of every chosen level is represented by its centre in
input-image coordinates; the pixels of all levels are flattened into one
axis of length ``N = Σ_l H_l·W_l``, ordered level → H → W (the order of
``feat.flatten(2)`` concatenated over levels). All images, instances,
classes and levels are handled with batched tensor operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ..detectors.strides import StrideLike, normalize_strides


def infer_strides(feat_sizes: Sequence[Tuple[int, int]],
                  batch_input_shape: Tuple[int, int]
                  ) -> List[Tuple[float, float]]:
    """Strides of feature maps from their sizes and the padded input size.

    ``s = 2^round(log2(input / size))`` per axis: the ratio is exact for
    levels whose size divides the padded input, and the rounding recovers
    the power-of-two stride of the extra FPN levels (P6, P7) whose sizes are
    rounded up by strided convolutions (800 px → P7 of 7 rows: 800/7 ≈ 114
    → 128). It is ambiguous for levels of one pixel (on a 64-px input P6
    and P7 are both 1 × 1) and wrong for strides that are not powers of
    two; give explicit strides there (the ``SEA`` method takes them from the
    detector's prior generator).

    Args:
        feat_sizes: ``(H_l, W_l)`` per level.
        batch_input_shape: ``(H, W)`` of the padded batch input.

    Returns:
        ``(s_x, s_y)`` per level.
    """
    in_h, in_w = batch_input_shape
    strides = []
    for h, w in feat_sizes:
        if h <= 0 or w <= 0:
            raise ValueError(f'Empty feature map of size {(h, w)}.')
        strides.append((float(2**round(math.log2(in_w / w))),
                        float(2**round(math.log2(in_h / h)))))
    return strides


def pixel_centres(feat_sizes: Sequence[Tuple[int, int]],
                  strides: Sequence[StrideLike],
                  device: Optional[torch.device] = None) -> Tensor:
    """Centres ``((w + 0.5)·s_x, (h + 0.5)·s_y)`` of all pixels of all levels.

    Args:
        feat_sizes: ``(H_l, W_l)`` per level.
        strides: Stride per level (number or ``(s_x, s_y)``).
        device: Device of the result.

    Returns:
        (N, 2) float32 ``[x, y]`` in input-image pixels, ordered
        level → H → W.
    """
    strides = normalize_strides(strides)
    if len(strides) != len(feat_sizes):
        raise ValueError(f'{len(feat_sizes)} feature levels but '
                         f'{len(strides)} strides.')
    parts = []
    for (h, w), (sx, sy) in zip(feat_sizes, strides):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * sy
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * sx
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        parts.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1))
    return torch.cat(parts) if parts else torch.zeros(0, 2, device=device)


def valid_pixel_mask(centres: Tensor, batch_img_metas: Sequence[dict]
                     ) -> Tensor:
    """Pixels whose centre lies inside each image's ``img_shape``.

    Padding added to batch images of different sizes is neither foreground
    nor background: those pixels are invalid.

    Returns:
        (B, N) bool.
    """
    shapes = torch.tensor([meta['img_shape'][:2] for meta in batch_img_metas],
                          dtype=torch.float32, device=centres.device)
    img_h, img_w = shapes[:, 0:1], shapes[:, 1:2]
    x, y = centres[None, :, 0], centres[None, :, 1]
    return (x < img_w) & (y < img_h)


def pad_instances(batch_gt_instances: Sequence, device: torch.device
                  ) -> Tuple[Tensor, Tensor, Tensor]:
    """Ground truth of all images padded to ``G = max_b G_b`` instances.

    Returns:
        boxes (B, G, 4) float32 ``x1, y1, x2, y2``; labels (B, G) long
        (0 where padded); valid (B, G) bool, False for padding.
    """
    boxes = [get_box_tensor(gt.bboxes).to(device, torch.float32).reshape(
        -1, 4) for gt in batch_gt_instances]
    labels = [gt.labels.to(device).long().reshape(-1)
              for gt in batch_gt_instances]
    counts = torch.tensor([len(b) for b in boxes], device=device)
    for b, lab in zip(boxes, labels):
        if len(b) != len(lab):
            raise ValueError(f'{len(b)} boxes but {len(lab)} labels in an '
                             'image.')
    boxes = pad_sequence(boxes, batch_first=True)
    labels = pad_sequence(labels, batch_first=True)
    valid = torch.arange(boxes.shape[1], device=device)[None] < counts[:, None]
    return boxes, labels, valid


def _has_masks(gt) -> bool:
    return 'masks' in gt and len(gt.masks) == len(gt.labels)


def instances_at_pixels(batch_gt_instances: Sequence,
                        centres: Tensor,
                        boxes: Tensor,
                        valid_gt: Tensor,
                        use_masks: bool = True) -> Tensor:
    """Whether each pixel centre lies in each ground-truth instance.

    Box test: ``x1 ≤ x < x2`` and ``y1 ≤ y < y2`` (half-open, so a pixel
    centre on a shared edge belongs to one box). With ``use_masks`` and
    instance masks in an image's ``gt_instances.masks`` (``BitmapMasks`` or
    ``PolygonMasks``, one per instance), that image's instances are tested
    with their masks instead, sampled at the mask pixel that holds the centre
    (``mask[floor(y), floor(x)]``; centres beyond the mask are outside).

    Args:
        batch_gt_instances: ``InstanceData`` per image.
        centres: (N, 2) pixel centres ``[x, y]``.
        boxes: (B, G, 4) padded boxes (see :func:`pad_instances`).
        valid_gt: (B, G) bool.
        use_masks: Use instance masks where an image has them.

    Returns:
        (B, G, N) bool.
    """
    x = centres[:, 0].view(1, 1, -1)
    y = centres[:, 1].view(1, 1, -1)
    x1, y1, x2, y2 = (boxes[..., i:i + 1] for i in range(4))
    inside = (x >= x1) & (x < x2) & (y >= y1) & (y < y2)
    inside &= valid_gt[..., None]
    if not use_masks:
        return inside
    has_mask = [_has_masks(gt) for gt in batch_gt_instances]
    if not any(has_mask):
        return inside

    device = centres.device
    num_images, num_gt = valid_gt.shape
    # all masks of all images flattened into one vector; each instance's
    # mask starts at its own offset, so one gather serves the whole batch
    flat, sizes, counts = [], [], []
    for gt, use in zip(batch_gt_instances, has_mask):
        if use:
            m = gt.masks.to_tensor(dtype=torch.bool, device=device)
            flat.append(m.reshape(-1))
            sizes.append(m.shape[-2:])
            counts.append(m.shape[0])
        else:
            sizes.append((0, 0))
            counts.append(0)
    flat = torch.cat(flat)
    sizes = torch.tensor(sizes, device=device, dtype=torch.long)
    mask_h, mask_w = sizes[:, 0:1], sizes[:, 1:2]  # (B, 1)
    counts = torch.tensor(counts, device=device, dtype=torch.long)
    image_start = torch.cumsum(counts * mask_h[:, 0] * mask_w[:, 0], 0) - \
        counts * mask_h[:, 0] * mask_w[:, 0]
    gt_start = image_start[:, None] + torch.arange(
        num_gt, device=device)[None] * (mask_h * mask_w)  # (B, G)

    xi = centres[:, 0].floor().long()[None]  # (1, N)
    yi = centres[:, 1].floor().long()[None]
    in_mask = (xi < mask_w) & (yi < mask_h)  # (B, N)
    pos = yi.clamp(min=0) * mask_w + xi.clamp(min=0)  # (B, N)
    pos = torch.minimum(pos, (mask_h * mask_w - 1).clamp(min=0))
    index = (gt_start[..., None] + pos[:, None]).clamp(0, max(len(flat) - 1,
                                                            0))
    if len(flat):
        sampled = flat[index] & in_mask[:, None] & valid_gt[..., None]
    else:
        sampled = torch.zeros_like(inside)
    use_mask = torch.tensor(has_mask, device=device).view(num_images, 1, 1)
    gt_has_mask = valid_gt & (torch.arange(num_gt, device=device)[None]
                              < counts[:, None])
    return torch.where(use_mask & gt_has_mask[..., None], sampled, inside)


@dataclass
class CategoryMasks:
    """Category membership of every pixel of the flattened levels.

    Attributes:
        classes: (B, K, N) bool, pixel in an instance of class
            ``class_ids[k]`` (valid pixels only).
        class_ids: (K,) long, the dataset label of each row of ``classes``.
        valid: (B, N) bool, pixel centre inside the image (not padding).
        foreground: (B, N) bool, valid pixel inside any instance.
    """
    classes: Tensor
    class_ids: Tensor
    valid: Tensor
    foreground: Tensor

    @property
    def background(self) -> Tensor:
        """(B, N) bool, valid pixel in no instance."""
        return self.valid & ~self.foreground


def category_masks(batch_gt_instances: Sequence,
                   batch_img_metas: Sequence[dict],
                   centres: Tensor,
                   num_classes: Optional[int] = None,
                   use_masks: bool = True) -> CategoryMasks:
    """Category masks of all images, classes and pixels at once.

    ``M[b, k, i] = valid[b, i] ∧ ∃ g: label[b, g] = class_ids[k] ∧
    inside[b, g, i]``, computed as a batched product of the (B, K, G)
    one-hot labels with the (B, G, N) inside test.

    Args:
        batch_gt_instances: ``InstanceData`` per image (``bboxes``,
            ``labels`` and optionally ``masks``).
        batch_img_metas: Meta information per image (``img_shape``).
        centres: (N, 2) pixel centres from :func:`pixel_centres`.
        num_classes: ``None``: one row per class present in the batch
            (``class_ids`` the sorted labels); an int: one row per class
            ``0..num_classes-1``.
        use_masks: Use instance masks where present (see
            :func:`instances_at_pixels`).

    Returns:
        :class:`CategoryMasks`.
    """
    if len(batch_gt_instances) != len(batch_img_metas):
        raise ValueError(f'{len(batch_gt_instances)} ground-truth entries but '
                         f'{len(batch_img_metas)} image metas.')
    device = centres.device
    boxes, labels, valid_gt = pad_instances(batch_gt_instances, device)
    valid = valid_pixel_mask(centres, batch_img_metas)
    inside = instances_at_pixels(batch_gt_instances, centres, boxes,
                                 valid_gt, use_masks)
    if num_classes is None:
        class_ids = torch.unique(labels[valid_gt])
    else:
        if valid_gt.any() and (labels[valid_gt].min() < 0 or
                               labels[valid_gt].max() >= num_classes):
            raise ValueError(f'Labels must lie in [0, {num_classes}), got '
                             f'{labels[valid_gt].unique().tolist()}.')
        class_ids = torch.arange(num_classes, device=device)
    # (B, G, K) one-hot over the kept classes; padded instances are all-zero
    one_hot = (labels[..., None] == class_ids.view(1, 1, -1)) & \
        valid_gt[..., None]
    classes = torch.bmm(one_hot.transpose(1, 2).float(),
                        inside.float()) > 0
    classes &= valid[:, None]
    foreground = inside.any(dim=1) & valid
    return CategoryMasks(classes=classes, class_ids=class_ids, valid=valid,
                         foreground=foreground)
