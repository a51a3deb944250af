"""The view of FCOS heads."""
from __future__ import annotations

from typing import List, Sequence

import torch
from mmdet.models.dense_heads import FCOSHead
from torch import Tensor

from .dense_head_view import DenseHeadView, register_dense_view
from .dense_outputs import DenseTargets
from .strides import level_strides


def _per_image(level_tensors: Sequence[Tensor],
               batch_size: int) -> List[Tensor]:
    """(B*N_l, ...) per level, images concatenated -> (B, N_l, ...)."""
    return [t.reshape(batch_size, -1, *t.shape[1:]) for t in level_tensors]


@register_dense_view(FCOSHead)
class FCOSHeadView(DenseHeadView):
    """FCOS: towers shared by the levels, distances to points; with
    ``norm_on_bbox=True`` its targets are divided by the stride and its
    training-mode predictions are in stride units (``forward_single``
    multiplies them by the stride only in eval mode)."""

    has_towers = True

    def targets(self, output, batch_size: int) -> DenseTargets:
        """Labels and box targets with the images concatenated per level
        (no label weights): every position weighs 1, the positives' boxes
        weigh 1, the normaliser is the number of positives."""
        if output is None:
            return super().targets(output, batch_size)
        if len(output) != 2:
            raise NotImplementedError(
                f'{type(self.head).__name__}.get_targets returned '
                f'{len(output)} items; an FCOS-style head returns labels and '
                'box targets.')
        labels = _per_image(output[0], batch_size)
        bbox_targets = _per_image(output[1], batch_size)
        positive = [(lab >= 0) & (lab < self.head.num_classes)
                    for lab in labels]
        label_weights = [torch.ones_like(lab, dtype=torch.float)
                         for lab in labels]
        bbox_weights = [pos.float().unsqueeze(-1).expand_as(box)
                        for pos, box in zip(positive, bbox_targets)]
        num_pos = float(torch.cat([pos.flatten() for pos in positive]).sum())
        return DenseTargets(labels, label_weights, bbox_targets, bbox_weights,
                            max(num_pos, 1.0))

    def eval_box_outputs(self, bbox_preds: Sequence[Tensor]
                         ) -> List[Tensor]:
        """Training-mode distances of a ``norm_on_bbox`` head multiplied by
        each level's stride (in eval mode the head has done it)."""
        if not (getattr(self.head, 'norm_on_bbox', False)
                and self.head.training):
            return list(bbox_preds)
        return [p * s for p, s in zip(bbox_preds,
                                      level_strides(self.head))]

    def targets_in_pixels(self, bbox_targets: Sequence[Tensor],
                          strides: Tensor) -> Tensor:
        codes = super().targets_in_pixels(bbox_targets, strides)
        if getattr(self.head, 'norm_on_bbox', False):
            codes = codes * strides[None, :, None]
        return codes
