"""Views of mmdet's anchor heads: any ``AnchorHead``, RetinaNet, ATSS."""
from __future__ import annotations

from mmdet.models.dense_heads import AnchorHead, ATSSHead, RetinaHead

from .dense_head_view import DenseHeadView, register_dense_view


@register_dense_view(AnchorHead)
class AnchorHeadView(DenseHeadView):
    """Any ``AnchorHead``: targets read, box deltas decoded by its coder;
    no tower layout assumed."""


@register_dense_view(RetinaHead)
class RetinaHeadView(AnchorHeadView):
    """RetinaNet: a classification and a box tower (``cls_convs``,
    ``reg_convs``) shared by the levels, ReLU layers."""

    has_towers = True


@register_dense_view(ATSSHead)
class ATSSHeadView(RetinaHeadView):
    """ATSS: RetinaNet's towers plus centerness; ``get_targets`` returns
    the anchors first."""

    target_output_offset = 1
