"""The view of TOOD's head (``TOODHead``, task-aligned one-stage detection):
the worked example of docs/adding_a_detector_family.md."""
from __future__ import annotations

from typing import List, Sequence

import torch
from mmdet.models.dense_heads import TOODHead
from torch import Tensor

from .anchor_head_view import ATSSHeadView
from .dense_head_view import metric_weighted_targets, register_dense_view
from .dense_outputs import DenseHeadOutputs, DenseTargets
from .strides import level_strides


@register_dense_view(TOODHead)
class TOODHeadView(ATSSHeadView):
    """TOOD: one anchor per location (ATSS's prior generator); what it
    differs in from ATSS, the view it would otherwise inherit:

    * its class outputs are probabilities, the geometric mean of the
      classifier's sigmoid and the task-alignment probability (its loss
      takes them ``activated=True``), so its detection-score logits are
      ``logit(p)``;
    * its box outputs are boxes already, ``(x1, y1, x2, y2)`` divided by the
      level's stride, so they are multiplied by it and not decoded again;
    * its targets are boxes in pixels with the task-alignment metrics
      (``get_targets`` returns the anchors, labels, label weights, boxes
      and metrics): from ``initial_epoch`` on the metrics weigh each
      positive's box term and their sum normalises both terms (before
      it, ATSS's assignment gives metrics of 1 at the positives, and TOOD
      weighs its box term by centerness);
    * the task-interactive layers (``inter_convs``) are shared by the two
      tasks: there are no separate classification and box towers.
    """

    has_towers = False
    box_targets = True

    def targets(self, output, batch_size: int) -> DenseTargets:
        """Labels, label weights, boxes and the alignment metrics
        (:func:`metric_weighted_targets`)."""
        if output is None:
            return super().targets(output, batch_size)
        return metric_weighted_targets(output)

    def score_logits(self, dense: DenseHeadOutputs) -> List[Tensor]:
        """``logit(p)`` of its class probabilities, kept finite."""
        eps = 1e-6
        return [torch.logit(p.float(), eps=eps) for p in dense.cls_scores]

    def level_predictions_in_pixels(self, bbox_preds: Sequence[Tensor]
                                    ) -> List[Tensor]:
        """Per level (B, 4, H, W) boxes in pixels."""
        return [p * s for p, s in zip(bbox_preds, level_strides(self.head))]

    def decode_rows(self, priors: Tensor, codes: Tensor, strides: Tensor,
                    bounded: bool = False) -> Tensor:
        """The codes are boxes already; ``bounded`` keeps each corner pair
        ordered (TOOD itself replaces inverted boxes before its loss)."""
        if not bounded:
            return codes
        low = torch.minimum(codes[:, :2], codes[:, 2:])
        high = torch.maximum(codes[:, :2], codes[:, 2:])
        return torch.cat([low, high], dim=1)
