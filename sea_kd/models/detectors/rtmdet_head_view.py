"""Views of RTMDet's heads."""
from __future__ import annotations

from mmdet.models.dense_heads import RTMDetHead, RTMDetInsHead

from .anchor_head_view import ATSSHeadView
from .dense_head_view import register_dense_view
from .dense_outputs import DenseTargets


@register_dense_view(RTMDetHead)
class RTMDetHeadView(ATSSHeadView):
    """RTMDet: towers shared by the levels or one per level
    (``RTMDetSepBNHead``), SiLU layers, boxes regressed in pixels; its
    targets carry the assignment metrics."""

    relu_towers = False

    @property
    def regresses_boxes(self) -> bool:
        return True

    def targets(self, output, batch_size: int) -> DenseTargets:
        """The anchors, labels, label weights, boxes, assignment metrics and
        sampling results: the metrics become ``quality``; its loss weighs
        each positive's box by its metric and divides both terms by the
        metrics' sum, so they are also the box weights and the
        normaliser."""
        if output is None:
            return super().targets(output, batch_size)
        labels, label_weights, bbox_targets, metrics = output[1:5]
        bbox_weights = [m.unsqueeze(-1).expand_as(box)
                        for m, box in zip(metrics, bbox_targets)]
        total = float(sum(m.sum() for m in metrics))
        return DenseTargets(list(labels), list(label_weights),
                            list(bbox_targets), bbox_weights,
                            max(total, 1.0), quality=list(metrics))


@register_dense_view(RTMDetInsHead)
class RTMDetInsHeadView(RTMDetHeadView):
    """RTMDet's instance heads (and ``RTMDetInsSepBNHead``): their forward
    also makes mask kernels and a mask feature from the neck, so they are
    not run as tower heads."""

    has_towers = False
