"""HMLD: Hungarian-matching logits distillation of DETR-family decoders
(DETRDistill, Chang et al., ICCV 2023)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.utils import ConfigType
from mmengine.structures import InstanceData
from torch import Tensor

from ....utils.checked_choice import checked_choice
from ...capture import DistillRecord, QueryOutputs, uses_sigmoid_classes
from ..distill_method import DistillMethod
from ..pair_requirement import PairRequirement
from .query_matching import hungarian_pairs, query_match_costs

#: which teacher queries are distillation targets
TEACHER_QUERIES = ('all', 'gt_matched')
#: which decoder layers are distilled
LAYERS = ('all', 'last')


def clip_to_image(boxes: Tensor) -> Tensor:
    """Clip normalised ``(cx, cy, w, h)`` boxes to the image: the part of
    each box inside ``[0, 1]²`` (the coordinates are fractions of the
    image's width and height, as DETR heads predict them)."""
    return bbox_xyxy_to_cxcywh(bbox_cxcywh_to_xyxy(boxes).clamp(0, 1))


def _same_classifiers(student, teacher) -> None:
    """Raise unless both DETR heads classify alike (sigmoid or softmax)."""
    use_sigmoid = uses_sigmoid_classes(student)
    if uses_sigmoid_classes(teacher) != use_sigmoid:
        kinds = {True: 'sigmoid (Deformable DETR, DINO)',
                 False: 'softmax with "no object" (DETR)'}
        raise ValueError(
            'HMLD compares class probabilities query by query, so both '
            'heads must classify alike; the student\'s is '
            f'{kinds[use_sigmoid]} and the teacher\'s '
            f'{kinds[not use_sigmoid]}. Pair detectors of one '
            'kind, or distil the necks (FI, PKD).')


@MODELS.register_module()
class HMLD(DistillMethod):
    """Hungarian-matching logits distillation of DETR-family decoders.

    Follows DETRDistill (Chang et al., ICCV 2023; the authors' code,
    ``BIVLab-USTC/DETRDistill``, ``DistillDeformableDETRHead`` and
    ``DistillHungarianAssigner``). In every distilled decoder layer the
    teacher's predictions are a set of soft targets: the student's
    queries are matched one to one to the teacher's by the Hungarian
    algorithm on :func:`query_match_costs` (soft class cross-entropy,
    box L1 and GIoU), and each matched student query learns its teacher
    query's class probabilities and box (:class:`QueryKDLoss`):
    ``loss_hmld_cls``, ``loss_hmld_l1`` and ``loss_hmld_giou``.

    The student's denoising queries (DINO in training) are not distilled;
    the teacher, in eval mode, has none.

    Args:
        teacher_queries: ``'all'`` (the authors'): every teacher query is a
            target, so every student query is matched (when the teacher has
            at least as many). ``'gt_matched'``: only the teacher queries
            that the teacher's own Hungarian assigner matches to the ground
            truth, in each layer; the other student queries are left to
            their own loss. Needs the teacher's ``train_cfg`` (its assigner).
        layers: ``'all'`` (the authors', layer by layer): student decoder
            layer ``Ls − k`` learns from teacher layer ``Lt − k`` for
            ``k = 1..min(Ls, Lt)`` (the last layers paired, as in the
            authors' equal-depth pairs); ``'last'``: the last layers only.
        match_cost: Weights of the matching cost, ``cls``, ``l1``, ``giou``
            (authors: 1, 5, 2).
        clip_teacher_boxes: Clip the teacher's boxes to the image before
            matching and as targets, as the source does
            (``_get_teacher_bboxes_distill_single``): a box reaching past
            the image border keeps only its part inside.
        loss_hmld: Config of the loss (default :class:`QueryKDLoss`, with
            the authors' weights 1, 5, 2; ``use_sigmoid`` is set from the
            heads).
        **kwargs: ``name``, ``init_cfg`` (:class:`DistillMethod`).
    """

    default_name = 'hmld'
    display_name = 'HMLD'
    record_parts = ('queries', )
    pair_requirements = (PairRequirement('needs classifiers of one kind',
                                         _same_classifiers), )

    def __init__(self,
                 teacher_queries: str = 'all',
                 layers: str = 'all',
                 match_cost: Optional[dict] = None,
                 loss_hmld: ConfigType = dict(type='QueryKDLoss'),
                 clip_teacher_boxes: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        checked_choice('teacher_queries', teacher_queries, TEACHER_QUERIES)
        checked_choice('layers', layers, LAYERS)
        costs = dict(cls=1.0, l1=5.0, giou=2.0)
        unknown = set(match_cost or {}) - set(costs)
        if unknown:
            raise ValueError(f'match_cost takes cls, l1 and giou, got '
                             f'{sorted(unknown)}.')
        costs.update(match_cost or {})
        self.match_cost = costs
        self.clip_teacher_boxes = bool(clip_teacher_boxes)
        self.teacher_queries = teacher_queries
        self.layers = layers
        self._loss_cfg = dict(loss_hmld)

    def setup(self) -> None:
        self.use_sigmoid = uses_sigmoid_classes(self.student)
        if self.teacher_queries == 'gt_matched' and getattr(
                self.teacher.bbox_head, 'assigner', None) is None:
            raise ValueError(
                "HMLD with teacher_queries='gt_matched' matches the "
                "teacher's queries to the ground truth with the teacher's "
                "assigner, but the teacher head has none: keep the "
                "teacher config's `train_cfg` (its HungarianAssigner), or "
                "use teacher_queries='all'.")
        cfg = dict(self._loss_cfg)
        cfg.setdefault('use_sigmoid', self.use_sigmoid)
        self.loss_hmld = MODELS.build(cfg)

    def layer_pairs(self, student_layers: int,
                    teacher_layers: int) -> Tuple[List[int], List[int]]:
        """Student and teacher decoder layers distilled, paired in order."""
        n = min(student_layers, teacher_layers) if self.layers == 'all' \
            else 1
        return (list(range(student_layers - n, student_layers)),
                list(range(teacher_layers - n, teacher_layers)))

    @torch.no_grad()
    def _gt_matched(self, teacher: QueryOutputs, layers: List[int],
                    record: DistillRecord,
                    t_box: Optional[Tensor] = None) -> List[List[Tensor]]:
        """``keep[g][b]``: teacher queries the teacher's assigner matches to
        image ``b``'s ground truth in layer ``layers[g]``, from the boxes
        ``t_box[g]`` (the step's, clipped to the image with
        ``clip_teacher_boxes``; ``None``: the teacher's as predicted)."""
        assigner = self.teacher.bbox_head.assigner
        keep = []
        for g, layer in enumerate(layers):
            per_image = []
            for b, (gt, meta) in enumerate(zip(record.batch_gt_instances,
                                               record.batch_img_metas)):
                img_h, img_w = meta['img_shape'][:2]
                scale = teacher.bbox_preds.new_tensor(
                    [img_w, img_h, img_w, img_h])
                pred = InstanceData(
                    scores=teacher.cls_scores[layer, b],
                    bboxes=bbox_cxcywh_to_xyxy(
                        teacher.bbox_preds[layer, b] if t_box is None
                        else t_box[g, b]) * scale)
                result = assigner.assign(pred_instances=pred,
                                         gt_instances=gt, img_meta=meta)
                per_image.append(torch.nonzero(result.gt_inds > 0)[:, 0])
            keep.append(per_image)
        return keep

    def forward(self, record: DistillRecord) -> Dict[str, Tensor]:
        student, teacher = record.student_queries, record.teacher_queries
        s_layers, t_layers = self.layer_pairs(student.cls_scores.shape[0],
                                              teacher.cls_scores.shape[0])
        s_cls, s_box = student.cls_scores[s_layers], \
            student.bbox_preds[s_layers]
        t_cls, t_box = teacher.cls_scores[t_layers], \
            teacher.bbox_preds[t_layers]
        if self.clip_teacher_boxes:
            t_box = clip_to_image(t_box)
        scale = torch.stack([
            s_box.new_tensor([m['img_shape'][1], m['img_shape'][0]] * 2)
            for m in record.batch_img_metas])
        costs = query_match_costs(
            s_cls, s_box, t_cls, t_box, scale, self.use_sigmoid,
            self.match_cost['cls'], self.match_cost['l1'],
            self.match_cost['giou'])
        keep = self._gt_matched(teacher, t_layers, record, t_box) \
            if self.teacher_queries == 'gt_matched' else None
        group, image, s_idx, t_idx = hungarian_pairs(costs, keep)
        return self.loss_hmld(
            s_cls[group, image, s_idx], t_cls[group, image, t_idx],
            s_box[group, image, s_idx], t_box[group, image, t_idx],
            scale[image], group, len(s_layers))
