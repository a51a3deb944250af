"""One-to-one matching of student queries to teacher queries (Hungarian).

DETRDistill (Chang et al., ICCV 2023) matches the student's predictions to
the teacher's as DETR matches predictions to ground truth, with the
teacher's class probabilities as soft labels. See ``docs/methods/hmld.md``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ...losses.query_kd_loss import soft_class_targets


def query_match_costs(student_cls: Tensor, student_boxes: Tensor,
                      teacher_cls: Tensor, teacher_boxes: Tensor,
                      scale: Tensor, use_sigmoid: bool, cls_weight: float,
                      l1_weight: float, giou_weight: float) -> Tensor:
    r"""Pairwise matching costs of every student and teacher query.

    For student query ``i`` and teacher query ``j`` of one image and
    layer pair::

        C_ij = w_cls CE(s_i, p_j) + w_l1 ‖b_i − b_j‖₁ − w_giou GIoU(B_i, B_j)

    with ``CE`` the soft cross-entropy of :class:`QueryKDLoss` (summed
    over the classes), ``b`` normalised (cx, cy, w, h) and ``B`` pixel
    (x1, y1, x2, y2) boxes. The class cost is two matrix products:
    ``−log σ(s) pᵀ − log(1 − σ(s)) (1 − p)ᵀ`` (sigmoid) or
    ``−log softmax(s) pᵀ`` (softmax).

    Args:
        student_cls: (G, B, Qs, C') logits.
        student_boxes: (G, B, Qs, 4).
        teacher_cls: (G, B, Qt, C') logits.
        teacher_boxes: (G, B, Qt, 4).
        scale: (B, 4) ``[w, h, w, h]`` of each image.
        use_sigmoid: Whether the heads classify with sigmoids.
        cls_weight, l1_weight, giou_weight: The cost weights.

    Returns:
        Tensor: (G, B, Qs, Qt) float32 costs, without gradient.
    """
    with torch.no_grad():
        s_cls, s_box = student_cls.float(), student_boxes.float()
        t_box = teacher_boxes.float()
        p = soft_class_targets(teacher_cls, use_sigmoid).float()
        if use_sigmoid:
            cls = -(F.logsigmoid(s_cls) @ p.transpose(-1, -2)) - \
                (F.logsigmoid(-s_cls) @ (1 - p).transpose(-1, -2))
        else:
            cls = -(F.log_softmax(s_cls, dim=-1) @ p.transpose(-1, -2))
        l1 = torch.cdist(s_box, t_box, p=1)
        scale = scale.float()[None, :, None, :]
        giou = bbox_overlaps(bbox_cxcywh_to_xyxy(s_box) * scale,
                             bbox_cxcywh_to_xyxy(t_box) * scale, mode='giou')
        return cls_weight * cls + l1_weight * l1 - giou_weight * giou


def hungarian_pairs(
    costs: Tensor,
    teacher_keep: Optional[Sequence[Sequence[Tensor]]] = None
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Minimum-cost one-to-one pairs per (group, image).

    Every student query is paired with a distinct teacher query while both
    last (``min(Qs, Qt)`` pairs). The assignment itself runs on the CPU per
    (group, image), as mmdet's ``HungarianAssigner`` does; there is no
    batched exact solver.

    Args:
        costs: (G, B, Qs, Qt) from :func:`query_match_costs`.
        teacher_keep: ``teacher_keep[g][b]``, the teacher queries that may
            be paired (long indices), or ``None`` for all.

    Returns:
        tuple: ``(group, image, student_index, teacher_index)``, each (N,)
        long on ``costs.device``.
    """
    num_groups, num_images = costs.shape[:2]
    matrix = costs.detach().cpu().numpy()
    found: List[Tuple[int, int, np.ndarray, np.ndarray]] = []
    for g in range(num_groups):
        for b in range(num_images):
            cost = matrix[g, b]
            columns = None
            if teacher_keep is not None:
                columns = teacher_keep[g][b].cpu().numpy()
                cost = cost[:, columns]
            if cost.shape[0] == 0 or cost.shape[1] == 0:
                continue
            rows, cols = linear_sum_assignment(cost)
            if columns is not None:
                cols = columns[cols]
            found.append((g, b, rows, cols))
    device = costs.device
    if not found:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty, empty, empty
    group = np.concatenate([np.full(len(r), g) for g, _, r, _ in found])
    image = np.concatenate([np.full(len(r), b) for _, b, r, _ in found])
    rows = np.concatenate([r for *_, r, _ in found])
    cols = np.concatenate([c for *_, c in found])
    return tuple(torch.as_tensor(x, dtype=torch.long, device=device)
                 for x in (group, image, rows, cols))
