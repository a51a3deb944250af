"""The view of YOLOX heads."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import YOLOXHead
from torch import Tensor, nn

from .dense_head_view import DenseHeadView, register_dense_view
from .dense_outputs import DenseHeadOutputs, DenseTargets

#: Bound of YOLOX's log box sizes (in strides) before its exp decoding:
#: e^10 strides is far beyond any image.
YOLOX_MAX_LOG_SIZE = 10.0


@register_dense_view(YOLOXHead)
class YOLOXHeadView(DenseHeadView):
    """YOLOX: one tower per level (``multi_level_cls_convs``,
    ``multi_level_reg_convs``), Swish layers, an objectness output, no box
    coder (its own ``_bbox_decode``: centre offsets and log sizes in stride
    units), and targets built image by image inside its loss."""

    has_towers = True
    tower_attributes = ('multi_level_cls_convs', 'multi_level_reg_convs')
    relu_towers = False

    box_targets = True

    def target_tap_points(self) -> List[Tuple[nn.Module, str]]:
        return [(self.head, '_get_targets_single'),
                (self.head.sampler, 'sample')]

    def targets(self, output, batch_size: int) -> DenseTargets:
        raise TypeError('YOLOX builds its targets image by image inside '
                        'its loss; read them with read_targets.')

    def read_targets(self, taps: Sequence, batch_size: int,
                     num_per_level: Sequence[int]) -> DenseTargets:
        """The targets ``YOLOXHead.loss_by_feat`` built, in one layout.

        YOLOX assigns each image inside its loss (``_get_targets_single``,
        one call per image; SimOTA, then ``sampler.sample`` for the images
        with ground truth) and keeps only the positives' targets. Here they
        are scattered back to every prior: the label and box of each
        positive (background ``num_classes`` elsewhere), its IoU with its
        box as ``quality`` (the loss's class target is
        ``one_hot(label) · IoU``), the positives as box weights, every
        prior with label weight 1 (objectness is trained on every prior)
        and the number of positives as the normaliser.

        Args:
            taps: The taps of ``_get_targets_single`` (one call per image,
                in image order) and of ``head.sampler.sample`` (one call
                per image with ground truth, in image order).
            batch_size: Number of images.
            num_per_level: Priors per level (H_l * W_l).
        """
        target_calls, sample_calls = taps[0].calls, taps[1].calls
        head = self.head
        samples = iter(sample_calls)
        labels, boxes, quality = [], [], []
        # one recorded call per image, each with its own number of
        # positives (mmdet's own loss assigns image by image too)
        for call in target_calls:
            foreground = call.output[0]
            label = torch.full_like(foreground, head.num_classes,
                                    dtype=torch.long)
            box = call.output[3].new_zeros((foreground.shape[0], 4))
            iou = box.new_zeros(foreground.shape[0])
            if len(call.args[4]):  # this image's ground truth
                sample = next(samples)
                result, pos = sample.output, sample.output.pos_inds
                if not torch.equal(
                        torch.nonzero(foreground).flatten().sort()[0],
                        pos.sort()[0]):
                    raise RuntimeError(
                        'The recorded YOLOX sampling does not match its '
                        'foreground mask; the capture lost the image order.')
                label[pos] = result.pos_gt_labels
                box[pos] = result.pos_gt_bboxes.to(box.dtype)
                iou[pos] = sample.args[0].max_overlaps[pos].to(iou.dtype)
            labels.append(label)
            boxes.append(box)
            quality.append(iou)
        if next(samples, None) is not None:
            raise RuntimeError('More YOLOX samplings were recorded than '
                               'images with ground truth.')
        labels, boxes, quality = (torch.stack(x) for x in (labels, boxes,
                                                           quality))
        positive = labels < head.num_classes

        def split(t: Tensor) -> List[Tensor]:
            return list(torch.split(t, list(num_per_level), dim=1))

        return DenseTargets(
            labels=split(labels),
            label_weights=split(torch.ones_like(quality)),
            bbox_targets=split(boxes),
            bbox_weights=split(positive.unsqueeze(-1).expand_as(boxes).to(
                boxes.dtype)),
            avg_factor=max(float(positive.sum()), 1.0),
            quality=split(quality))

    def score_logits(self, dense: DenseHeadOutputs) -> List[Tensor]:
        """YOLOX trains its class logits at the positives only and scores a
        detection by ``σ(c) · σ(o)`` with its objectness ``o``
        (``dense.extras[0]``), so its logits here are
        ``logit(σ(c) · σ(o))``, computed from ``log σ(c) + log σ(o)`` for
        stability; gradients reach both branches."""
        logits = []
        for cls, obj in zip(dense.cls_scores, dense.extras[0]):
            log_p = (F.logsigmoid(cls.float()) +
                     F.logsigmoid(obj.float())).clamp(max=-1e-6)
            logits.append(log_p - torch.log(-torch.expm1(log_p)))
        return logits

    def decode_rows(self, priors: Tensor, codes: Tensor, strides: Tensor,
                    bounded: bool = False) -> Tensor:
        if bounded:
            codes = self.bound_codes(codes)
        with_stride = torch.cat(
            [priors[:, :2], strides[:, None].expand(-1, 2)], dim=1)
        return self.head._bbox_decode(with_stride, codes)

    def bound_codes(self, codes: Tensor) -> Tensor:
        """Log sizes bounded by :data:`YOLOX_MAX_LOG_SIZE`, so that no prior
        overflows to an infinite box."""
        return torch.cat(
            [codes[:, :2], codes[:, 2:].clamp(max=YOLOX_MAX_LOG_SIZE)],
            dim=1)
