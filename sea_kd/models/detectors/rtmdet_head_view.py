"""Views of RTMDet's heads."""
from __future__ import annotations

from mmdet.models.dense_heads import RTMDetHead, RTMDetInsHead

from .anchor_head_view import ATSSHeadView
from .dense_head_view import metric_weighted_targets, register_dense_view
from .dense_outputs import DenseTargets


@register_dense_view(RTMDetHead)
class RTMDetHeadView(ATSSHeadView):
    """RTMDet: towers shared by the levels or one per level
    (``RTMDetSepBNHead``), SiLU layers, boxes regressed in pixels; its
    targets carry the assignment metrics."""

    relu_towers = False

    box_targets = True

    def targets(self, output, batch_size: int) -> DenseTargets:
        """The anchors, labels, label weights, boxes, assignment metrics and
        sampling results (:func:`metric_weighted_targets`)."""
        if output is None:
            return super().targets(output, batch_size)
        return metric_weighted_targets(output)


@register_dense_view(RTMDetInsHead)
class RTMDetInsHeadView(RTMDetHeadView):
    """RTMDet's instance heads (and ``RTMDetInsSepBNHead``): their forward
    also makes mask kernels and a mask feature from the neck, so they are
    not run as tower heads, and their detections need the mask branch's
    outputs."""

    has_towers = False
    predicts_boxes_alone = False
