"""Turn a teacher's detections into a pseudo-labelled COCO data set."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np


def category_ids_by_name(classes: Sequence[str], categories: List[dict],
                         source: str) -> np.ndarray:
    """The COCO category id of each of a teacher's labels, matched by name.

    Matching by position would relabel every box when the file lists its
    categories in another order than the teacher's classes.

    Args:
        classes: The teacher's class names; label ``k`` is ``classes[k]``.
        categories: COCO ``categories`` (``id``, ``name``).
        source: Where ``categories`` come from, for the message.

    Returns:
        np.ndarray: ``(len(classes),)`` int64 lookup table, label to
        category id.

    Raises:
        ValueError: A class has no category of its name in ``categories``;
            the message names the classes, the file and the fix.
    """
    by_name = {c['name']: c['id'] for c in categories}
    missing = [name for name in classes if name not in by_name]
    if missing:
        raise ValueError(
            f'The teacher predicts {", ".join(map(repr, missing))} but '
            f'`{source}` has no category of that name (its categories: '
            f'{", ".join(map(repr, by_name)) or "none"}). Pseudo labels are '
            'matched to categories by name: add the missing categories to '
            'the file, or use a teacher trained on its classes.')
    return np.array([by_name[name] for name in classes], dtype=np.int64)


def detections_to_coco(images: List[dict], detections: Sequence[dict],
                       categories: List[dict], score_thr: float, *,
                       category_ids: Sequence[int]) -> dict:
    """Build COCO annotations from detections, one image at a time.

    Detections scoring at least ``score_thr`` become hard pseudo boxes
    (``bbox`` in ``[x, y, w, h]``, ``score`` kept for reference); images left
    without any box are dropped, as in SAD.

    Args:
        images: COCO ``images`` entries (``id``, ``file_name``, ``width``,
            ``height``), in the order of ``detections``.
        detections: Per image, ``bboxes`` (K, 4) xyxy in image pixels,
            ``scores`` (K,) and ``labels`` (K,) as 0-based class indices.
        categories: COCO ``categories`` of the output.
        score_thr: Minimum score of a pseudo box.
        category_ids: Lookup table: label ``k`` gets category id
            ``category_ids[k]`` (see :func:`category_ids_by_name`).

    Returns:
        dict: A COCO data set with ``images``, ``annotations``,
        ``categories``.

    Raises:
        ValueError: ``images`` and ``detections`` differ in length, or a
            label has no entry in ``category_ids``.
    """
    if len(images) != len(detections):
        raise ValueError(f'{len(images)} images but {len(detections)} '
                         'detection results.')
    lookup = np.asarray(category_ids, dtype=np.int64).reshape(-1)
    out_images, annotations = [], []
    for image, det in zip(images, detections):
        scores = np.asarray(det['scores'], dtype=np.float64).reshape(-1)
        keep = scores >= score_thr
        if not keep.any():
            continue
        boxes = np.asarray(det['bboxes'],
                           dtype=np.float64).reshape(-1, 4)[keep]
        labels = np.asarray(det['labels'], dtype=np.int64).reshape(-1)[keep]
        if labels.min() < 0 or labels.max() >= len(lookup):
            raise ValueError(
                f'Image {image["file_name"]!r} has a detection of label '
                f'{int(labels.max())}, but only {len(lookup)} labels have a '
                'category id: the teacher predicts more classes than it '
                'names.')
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        out_images.append(image)
        first = len(annotations) + 1
        annotations.extend(
            dict(id=first + i, image_id=image['id'], category_id=cat,
                 bbox=box, area=box[2] * box[3], iscrowd=0, score=score)
            for i, (box, cat, score) in enumerate(zip(
                xywh.tolist(), lookup[labels].tolist(),
                scores[keep].tolist())))
    return dict(images=out_images, annotations=annotations,
                categories=categories)
