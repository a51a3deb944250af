"""The view of GFL heads (``GFLHead`` and subclasses such as ``LDHead``)."""
from __future__ import annotations

from typing import List, Sequence

from mmdet.models.dense_heads import GFLHead
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor

from .anchor_head_view import RetinaHeadView
from .dense_head_view import register_dense_view
from .strides import level_strides


@register_dense_view(GFLHead)
class GFLHeadView(RetinaHeadView):
    """GFL: RetinaNet-like towers; each box edge predicted as a
    distribution over ``reg_max + 1`` bins; ``get_targets`` returns the
    anchors first and boxes in pixels.

    Boxes are formed as GFL's own prediction forms them
    (``GFLHead._predict_by_feat_single``): each edge's distance is the
    expectation of its distribution (the head's ``Integral``), ``d =
    Σ_k softmax(p)_k · k``, times the level's stride, taken from the anchor's
    centre by the head's ``DistancePointBBoxCoder``.
    """

    predicts_distributions = True
    target_output_offset = 1
    box_targets = True

    def level_predictions_in_pixels(self, bbox_preds: Sequence[Tensor]
                                    ) -> List[Tensor]:
        """Per level (B, 4, H, W): each edge's expected distance in
        pixels."""
        bins = self.head.integral.project
        out = []
        for pred, stride in zip(bbox_preds, level_strides(self.head)):
            batch, _, height, width = pred.shape
            prob = pred.reshape(batch, 4, bins.numel(), height,
                                width).softmax(dim=2)
            expected = (prob * bins.to(prob)[:, None, None]).sum(dim=2)
            out.append(expected * stride)
        return out

    def decode_rows(self, priors: Tensor, codes: Tensor, strides: Tensor,
                    bounded: bool = False) -> Tensor:
        """(M, 4) boxes of (M, 4) pixel distances from the centres of the
        (M, 4) anchors (distances of distributions are never negative)."""
        return get_box_tensor(self.head.bbox_coder.decode(
            self.head.anchor_center(priors), codes))
