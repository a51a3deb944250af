import json

import numpy as np
import pytest
import torch

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco
from sea_kd.datasets import (MarkUnlabeled, detections_to_coco,
                             split_labeled_unlabeled)


def test_split_holds_out_labels_deterministically(tmp_path):
    summary = generate_synthetic_coco(str(tmp_path), num_train=10,
                                      num_val=2, seed=1)
    labeled, unlabeled = split_labeled_unlabeled(summary['train_ann_file'],
                                                 0.4, seed=3)
    with open(labeled) as f:
        lab = json.load(f)
    with open(unlabeled) as f:
        unl = json.load(f)
    with open(summary['train_ann_file']) as f:
        full = json.load(f)
    lab_ids = {im['id'] for im in lab['images']}
    unl_ids = {im['id'] for im in unl['images']}
    assert len(unl_ids) == 4 and len(lab_ids) == 6
    assert lab_ids | unl_ids == {im['id'] for im in full['images']}
    assert not lab_ids & unl_ids
    assert unl['annotations'] == []
    assert {a['image_id'] for a in lab['annotations']} <= lab_ids
    assert len(lab['annotations']) == sum(
        a['image_id'] in lab_ids for a in full['annotations'])
    split_labeled_unlabeled(summary['train_ann_file'], 0.4, seed=3)
    with open(unlabeled) as f:
        assert json.load(f) == unl
    with pytest.raises(ValueError, match='unlabeled_fraction'):
        split_labeled_unlabeled(summary['train_ann_file'], 1.0)


def test_detections_to_coco_thresholds_and_drops_empty_images():
    images = [dict(id=7, file_name='a.png', width=20, height=20),
              dict(id=9, file_name='b.png', width=20, height=20)]
    categories = [dict(id=1, name='x'), dict(id=2, name='y')]
    detections = [
        dict(bboxes=np.array([[1, 2, 5, 10], [0, 0, 3, 3]]),
             scores=np.array([0.9, 0.2]), labels=np.array([1, 0])),
        dict(bboxes=torch.tensor([[1.0, 1.0, 2.0, 2.0]]),
             scores=torch.tensor([0.4]), labels=torch.tensor([0])),
    ]
    coco = detections_to_coco(images, detections, categories, 0.5,
                              category_ids=[1, 2])
    assert [im['id'] for im in coco['images']] == [7]
    assert coco['annotations'] == [dict(
        id=1, image_id=7, category_id=2, bbox=[1.0, 2.0, 4.0, 8.0],
        area=32.0, iscrowd=0, score=pytest.approx(0.9))]
    assert coco['categories'] == categories
    assert detections_to_coco(images, detections, categories, 0.95,
                              category_ids=[1, 2])['images'] == []
    with pytest.raises(ValueError, match='2 images but 1'):
        detections_to_coco(images, detections[:1], categories, 0.5,
                           category_ids=[1, 2])


def test_mark_unlabeled_transform():
    assert MarkUnlabeled()(dict(img_id=3)) == dict(img_id=3, unlabeled=True)
