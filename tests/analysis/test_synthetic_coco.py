import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from sea_kd.analysis.synthetic_coco import (SYNTHETIC_CLASSES,
                                            generate_synthetic_coco)

from ..conftest import REPO

DET_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets',
                      'synthetic_coco_detection.py')
INST_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets',
                       'synthetic_coco_instance.py')


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name == 'meta.json':
                continue  # holds the generation time
            with open(osp.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('small')
    summary = generate_synthetic_coco(str(root), num_train=12, num_val=6,
                                      seed=5)
    return str(root), summary


def test_deterministic_per_seed(tmp_path, small_set):
    root, _ = small_set
    again = generate_synthetic_coco(str(tmp_path / 'a'), num_train=12,
                                    num_val=6, seed=5)
    other = generate_synthetic_coco(str(tmp_path / 'b'), num_train=12,
                                    num_val=6, seed=6)
    assert _digest(root) == _digest(again['out_dir'])
    assert _digest(root) != _digest(other['out_dir'])


def test_annotations_are_valid(small_set):
    root, summary = small_set
    assert summary['classes'] == list(SYNTHETIC_CLASSES)
    for split, n in (('train', 12), ('val', 6)):
        with open(summary[f'{split}_ann_file']) as f:
            coco = json.load(f)
        assert len(coco['images']) == n
        assert [c['id'] for c in coco['categories']] == list(
            range(1, len(SYNTHETIC_CLASSES) + 1))
        sizes = {im['id']: (im['width'], im['height'])
                 for im in coco['images']}
        for im in coco['images']:
            assert osp.isfile(osp.join(root, split, im['file_name']))
        assert len({a['id'] for a in coco['annotations']}) == len(
            coco['annotations']) > 0
        for ann in coco['annotations']:
            w_img, h_img = sizes[ann['image_id']]
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and ann['area'] > 0
            assert 0 <= x and 0 <= y and x + w <= w_img and y + h <= h_img
            assert 1 <= ann['category_id'] <= len(SYNTHETIC_CLASSES)
            assert ann['iscrowd'] == 0
            poly = np.asarray(ann['segmentation'][0]).reshape(-1, 2)
            assert len(poly) >= 3
            assert (poly >= 0).all() and (poly[:, 0] <= w_img).all() \
                and (poly[:, 1] <= h_img).all()


def test_reuse_unless_overwrite(small_set):
    root, _ = small_set
    ann = osp.join(root, 'annotations', 'instances_train.json')
    before = os.stat(ann).st_mtime_ns
    summary = generate_synthetic_coco(root, num_train=12, num_val=6, seed=5)
    assert summary['generated'] is False
    assert os.stat(ann).st_mtime_ns == before
    summary = generate_synthetic_coco(root, num_train=12, num_val=6, seed=5,
                                      overwrite=True)
    assert summary['generated'] is True


@pytest.mark.parametrize('config', [DET_CONFIG, INST_CONFIG])
def test_mmdet_coco_dataset_reads_it(small_set, config):
    from mmdet.registry import DATASETS
    root, summary = small_set
    cfg = Config.fromfile(config)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = root + '/'
    dataset = DATASETS.build(dataset_cfg)
    assert dataset.metainfo['classes'] == SYNTHETIC_CLASSES
    item = dataset[0]
    assert item['inputs'].shape == (3, 128, 128)
    gt = item['data_samples'].gt_instances
    assert len(gt.bboxes) > 0
    assert ((gt.labels >= 0) & (gt.labels < len(SYNTHETIC_CLASSES))).all()
    if config == INST_CONFIG:
        assert len(gt.masks) == len(gt.bboxes)


def test_coco_metric_gives_full_ap_for_ground_truth(small_set):
    from mmdet.evaluation import CocoMetric
    root, summary = small_set
    with open(summary['val_ann_file']) as f:
        coco = json.load(f)
    metric = CocoMetric(ann_file=summary['val_ann_file'], metric='bbox')
    metric.dataset_meta = dict(classes=SYNTHETIC_CLASSES)
    for im in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == im['id']]
        boxes = torch.tensor([[a['bbox'][0], a['bbox'][1],
                               a['bbox'][0] + a['bbox'][2],
                               a['bbox'][1] + a['bbox'][3]] for a in anns])
        metric.process({}, [dict(
            img_id=im['id'], ori_shape=(im['height'], im['width']),
            pred_instances=dict(
                bboxes=boxes.reshape(-1, 4).float(),
                scores=torch.ones(len(anns)),
                labels=torch.tensor([a['category_id'] - 1 for a in anns],
                                    dtype=torch.long)))])
    results = metric.evaluate(len(coco['images']))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0)


def test_default_data_sets_record_no_new_options(small_set):
    """Options at their defaults are not recorded, so data sets generated
    before the options existed are still reused."""
    _, summary = small_set
    with open(summary['meta_file']) as f:
        args = json.load(f)['args']
    assert not {'num_classes', 'min_size_frac', 'max_size_frac'} & set(args)


def test_a_varied_data_set_of_twenty_classes(tmp_path):
    """More classes, larger images, smaller and more objects: every shape
    is drawn with a valid polygon, the sizes follow the options."""
    from sea_kd.analysis.synthetic_coco import SHAPE_CLASSES
    size = 192
    summary = generate_synthetic_coco(
        str(tmp_path), num_train=40, num_val=2, img_size=size,
        min_objects=6, max_objects=10, num_classes=20, min_size_frac=0.05,
        max_size_frac=0.2, seed=1)
    assert summary['classes'] == list(SHAPE_CLASSES) and len(
        SHAPE_CLASSES) == 20
    with open(summary['train_ann_file']) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']] == list(SHAPE_CLASSES)
    anns = coco['annotations']
    assert {a['category_id'] for a in anns} == set(range(1, 21))
    assert len(anns) / 40 > 5  # the default draws 1-6 per image
    sides = np.array([max(a['bbox'][2:]) for a in anns])
    # diameter at most 0.2 * size, stretched by at most 1.18
    assert sides.max() <= 0.2 * size * 1.18 + 1
    assert np.median(sides) < 0.15 * size
    for ann in anns:
        poly = np.asarray(ann['segmentation'][0]).reshape(-1, 2)
        assert len(poly) >= 3 and ann['area'] > 0


@pytest.mark.parametrize('options, match', [
    (dict(num_classes=21), 'num_classes must be in 1..20'),
    (dict(num_classes=0), 'num_classes must be in 1..20'),
    (dict(min_size_frac=0.3, max_size_frac=0.2), 'min_size_frac'),
])
def test_bad_generator_options_are_refused(tmp_path, options, match):
    with pytest.raises(ValueError, match=match):
        generate_synthetic_coco(str(tmp_path), num_train=1, num_val=1,
                                **options)
