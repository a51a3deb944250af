"""The view of GFL heads (``GFLHead`` and subclasses such as ``LDHead``)."""
from __future__ import annotations

from mmdet.models.dense_heads import GFLHead

from .dense_head_view import register_dense_view
from .anchor_head_view import RetinaHeadView


@register_dense_view(GFLHead)
class GFLHeadView(RetinaHeadView):
    """GFL: RetinaNet-like towers; each box edge predicted as a
    distribution over ``reg_max + 1`` bins; ``get_targets`` returns the
    anchors first and boxes in pixels."""

    predicts_distributions = True
    target_output_offset = 1
