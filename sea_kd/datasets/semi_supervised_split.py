"""Split a COCO annotation file into a labeled and an unlabeled part."""
from __future__ import annotations

import json
import os.path as osp
from typing import Tuple

import numpy as np


def split_labeled_unlabeled(ann_file: str,
                            unlabeled_fraction: float = 0.5,
                            seed: int = 0) -> Tuple[str, str]:
    """Hold out the labels of part of a COCO split.

    Writes ``<stem>_labeled.json`` (the kept images with their annotations)
    and ``<stem>_unlabeled.json`` (the other images, with no annotations)
    next to ``ann_file``. The choice of images is deterministic for a seed.

    Args:
        ann_file: A COCO-format annotation file.
        unlabeled_fraction: Share of the images whose labels are removed.
        seed: Seed of the image choice.

    Returns:
        tuple: Paths of the labeled and the unlabeled annotation files.
    """
    if not 0 < unlabeled_fraction < 1:
        raise ValueError('unlabeled_fraction must lie in (0, 1), got '
                         f'{unlabeled_fraction}')
    with open(ann_file) as f:
        coco = json.load(f)
    ids = sorted(im['id'] for im in coco['images'])
    rng = np.random.default_rng(seed)
    num_unlabeled = int(round(len(ids) * unlabeled_fraction))
    unlabeled = set(rng.permutation(ids)[:num_unlabeled].tolist())

    def subset(keep_unlabeled: bool) -> dict:
        images = [im for im in coco['images']
                  if (im['id'] in unlabeled) == keep_unlabeled]
        annotations = [] if keep_unlabeled else [
            a for a in coco['annotations'] if a['image_id'] not in unlabeled
        ]
        return dict(coco, images=images, annotations=annotations)

    stem = osp.splitext(ann_file)[0]
    paths = (f'{stem}_labeled.json', f'{stem}_unlabeled.json')
    for path, keep_unlabeled in zip(paths, (False, True)):
        with open(path, 'w') as f:
            json.dump(subset(keep_unlabeled), f)
    return paths
