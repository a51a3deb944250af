"""Turn a teacher's detections into a pseudo-labelled COCO data set."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np


def detections_to_coco(images: List[dict], detections: Sequence[dict],
                       categories: List[dict], score_thr: float) -> dict:
    """Build COCO annotations from detections, one image at a time.

    Detections scoring at least ``score_thr`` become hard pseudo boxes
    (``bbox`` in ``[x, y, w, h]``, ``score`` kept for reference); images left
    without any box are dropped, as in SAD.

    Args:
        images: COCO ``images`` entries (``id``, ``file_name``, ``width``,
            ``height``), in the order of ``detections``.
        detections: Per image, ``bboxes`` (K, 4) xyxy in image pixels,
            ``scores`` (K,) and ``labels`` (K,) as 0-based class indices.
        categories: COCO ``categories``; label ``k`` maps to
            ``categories[k]['id']``.
        score_thr: Minimum score of a pseudo box.

    Returns:
        dict: A COCO data set with ``images``, ``annotations``,
        ``categories``.
    """
    if len(images) != len(detections):
        raise ValueError(f'{len(images)} images but {len(detections)} '
                         'detection results.')
    out_images, annotations = [], []
    for image, det in zip(images, detections):
        boxes = np.asarray(det['bboxes'], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(det['scores'], dtype=np.float64).reshape(-1)
        labels = np.asarray(det['labels'], dtype=np.int64).reshape(-1)
        keep = scores >= score_thr
        if not keep.any():
            continue
        out_images.append(image)
        for box, score, label in zip(boxes[keep], scores[keep],
                                     labels[keep]):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image['id'],
                    category_id=categories[int(label)]['id'],
                    bbox=[float(box[0]), float(box[1]), float(w), float(h)],
                    area=float(w * h),
                    iscrowd=0,
                    score=float(score)))
    return dict(images=out_images, annotations=annotations,
                categories=categories)
