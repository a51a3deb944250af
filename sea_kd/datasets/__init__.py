"""Data sets shipped with sea_kd (a synthetic COCO-format shapes generator)."""

from .synthetic_coco import SYNTHETIC_CLASSES, generate_synthetic_coco

__all__ = ['SYNTHETIC_CLASSES', 'generate_synthetic_coco']
