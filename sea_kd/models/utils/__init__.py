from .category_masks import (CategoryMasks, category_masks, infer_strides,
                             instances_at_pixels,
                             pad_instances, pixel_centres, valid_pixel_mask)
from .precision import at_least_fp32, levels_at_least_fp32  # noqa: F401

__all__ = [
    'CategoryMasks', 'category_masks', 'infer_strides', 'instances_at_pixels',
    'pad_instances', 'pixel_centres', 'valid_pixel_mask'
]
