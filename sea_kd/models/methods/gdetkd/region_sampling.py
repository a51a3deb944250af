"""Regions of a dense student for a two-stage teacher (G-DetKD).

The student's predicted boxes, decoded from its dense head outputs of the
step (already recorded, detached), serve as proposals; the teacher's R-CNN
assigner and sampler pick the regions, with the ground truth added as
proposals as mmdet's R-CNN training does. An image without predictions
still gets its ground-truth boxes as regions.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence

import torch
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...detectors import DenseHeadOutputs, checked_dense_view
from ...utils.precision import at_least_fp32

#: The student's boxes before sampling: top 2000 per level, NMS at IoU 0.7,
#: at most 1000 per image, no score threshold, only boxes of positive width
#: and height (``min_bbox_size=0``: mmdet drops the others before NMS, so
#: that the reversed boxes of an early student whose edge distances are
#: unbounded, e.g. RTMDet's, neither take the budget nor reach RoIAlign).
DEFAULT_PROPOSAL_CFG = dict(
    nms_pre=2000,
    score_thr=0.0,
    nms=dict(type='nms', iou_threshold=0.7),
    max_per_img=1000,
    min_bbox_size=0)


@torch.no_grad()
def dense_head_proposals(head: nn.Module,
                         cls_scores: Sequence[Tensor],
                         bbox_preds: Sequence[Tensor],
                         score_factors: Optional[Sequence[Tensor]],
                         batch_img_metas: List[dict],
                         proposal_cfg: Optional[ConfigType] = None
                         ) -> InstanceList:
    """Decode a dense head's raw outputs into boxes, per image.

    Runs ``head.predict_by_feat`` through the head's view
    (:meth:`DenseHeadView.predict`: the box outputs as the head gives them
    in eval mode, e.g. ``FCOSHead`` with ``norm_on_bbox=True`` scales its
    training-mode distances by the stride only in eval mode; the extras as
    the head takes them) on detached outputs with ``rescale=False`` (boxes
    in input-image pixels) and ``with_nms=True``.

    Args:
        head: The student's dense head (RetinaNet, FCOS, ATSS, ...).
        cls_scores, bbox_preds: Per level (B, ·, H, W), as recorded.
        score_factors: Per level centerness (FCOS, ATSS), objectness
            (YOLOX), or ``None``.
        batch_img_metas: Meta information per image.
        proposal_cfg: ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``
            (and ``min_bbox_size``, 0 unless given); default
            :data:`DEFAULT_PROPOSAL_CFG`.

    Returns:
        list[InstanceData]: ``bboxes`` (n, 4), ``scores``, ``labels``.
    """
    cfg = ConfigDict(copy.deepcopy(
        dict(proposal_cfg if proposal_cfg is not None else
             DEFAULT_PROPOSAL_CFG)))
    cfg.setdefault('min_bbox_size', 0)
    # fp32: mmcv's CPU NMS has no half-precision kernel
    extras = () if score_factors is None else \
        ([at_least_fp32(f.detach()) for f in score_factors], )
    dense = DenseHeadOutputs([at_least_fp32(c.detach()) for c in cls_scores],
                             [at_least_fp32(b.detach()) for b in bbox_preds],
                             extras)
    return checked_dense_view(head, 'student').predict(dense,
                                                       batch_img_metas, cfg)


@torch.no_grad()
def sample_regions(proposals: InstanceList, batch_data_samples: SampleList,
                   assigner, sampler) -> List[SamplingResult]:
    """Assign and sample proposals per image with an R-CNN's assigner and
    sampler (``add_gt_as_proposals`` of the sampler adds the ground truth).

    Args:
        proposals: Per image ``InstanceData`` with ``bboxes``.
        batch_data_samples: The batch with ``gt_instances`` (and optionally
            ``ignored_instances``).
        assigner: E.g. the teacher's ``roi_head.bbox_assigner``.
        sampler: E.g. the teacher's ``roi_head.bbox_sampler``.

    Returns:
        list[SamplingResult]: One per image; ``priors`` are the regions.
    """
    gts, gts_ignore, _ = unpack_gt_instances(batch_data_samples)
    if len(proposals) != len(gts):
        raise ValueError(f'{len(proposals)} proposal sets for '
                         f'{len(gts)} images.')
    results = []
    # mmdet's assigners and samplers work one image at a time
    for props, gt, gt_ignore in zip(proposals, gts, gts_ignore):
        priors = InstanceData(
            priors=props.bboxes.detach().to(gt.bboxes.dtype))
        assign_result = assigner.assign(priors, gt, gt_ignore)
        results.append(sampler.sample(assign_result, priors, gt))
    return results


def regions_as_rois(sampling_results: Sequence[SamplingResult]) -> Tensor:
    """(K, 5) ``[batch_idx, x1, y1, x2, y2]`` of the sampled regions."""
    return bbox2roi([res.priors for res in sampling_results])


def positive_regions(sampling_results: Sequence[SamplingResult]) -> Tensor:
    """(K,) bool, row-aligned with :func:`regions_as_rois`: whether each
    sampled region is a positive (``SamplingResult.priors`` holds the
    positives of an image first, then its negatives)."""
    device = sampling_results[0].priors.device
    sizes = torch.tensor([len(res.priors) for res in sampling_results],
                         device=device)
    num_pos = torch.tensor([len(res.pos_priors) for res in sampling_results],
                           device=device)
    image = torch.repeat_interleave(
        torch.arange(len(sizes), device=device), sizes)
    rank = torch.arange(int(sizes.sum()), device=device) - \
        (sizes.cumsum(0) - sizes)[image]
    return rank < num_pos[image]
