"""Generated data set through mmdet's pipelines and metrics: boxes after flips,
instance masks (rings with their holes), segm AP, regeneration, bad input."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from sea_kd.analysis.synthetic_coco import (SYNTHETIC_CLASSES,
                                            generate_synthetic_coco)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CFG = osp.join(REPO, 'configs', '_base_', 'datasets',
                   'synthetic_coco_detection.py')
INST_CFG = osp.join(REPO, 'configs', '_base_', 'datasets',
                    'synthetic_coco_instance.py')
SMALL = dict(num_train=12, num_val=4, img_size=96, seed=3)


def _load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def extra_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_extra') / 'data')
    return root, generate_synthetic_coco(root, **SMALL)


def _build(cfg_path, root, split):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(cfg_path)
    key = 'train_dataloader' if split == 'train' else 'val_dataloader'
    ds_cfg = cfg[key]['dataset']
    ds_cfg.data_root = root + '/'
    ds_cfg.ann_file = f'annotations/instances_{split}.json'
    ds_cfg.data_prefix = dict(img=f'{split}/')
    return DATASETS.build(ds_cfg)


def test_boxes_and_labels_match_annotations(extra_set):
    root, summary = extra_set
    dataset = _build(DET_CFG, root, 'train')
    coco = _load(summary['train_ann_file'])
    scale = 128 / SMALL['img_size']
    for idx in range(3):
        item = dataset[idx]
        sample = item['data_samples']
        anns = [a for a in coco['annotations']
                if a['image_id'] == sample.metainfo['img_id']]
        gt = sample.gt_instances
        assert gt.labels.tolist() == [a['category_id'] - 1 for a in anns]
        expected = np.array([[x, y, x + w, y + h] for x, y, w, h in
                             (a['bbox'] for a in anns)],
                            dtype=np.float32) * scale
        if sample.metainfo.get('flip', False):
            expected[:, [0, 2]] = 128 - expected[:, [2, 0]]
        np.testing.assert_allclose(gt.bboxes.numpy(), expected, rtol=1e-4,
                                   atol=1e-3)


def test_instance_masks_match_areas(extra_set):
    """Rasterised polygons (rings: keyhole polygon without hole) ~ area."""
    root, summary = extra_set
    dataset = _build(INST_CFG, root, 'val')
    coco = _load(summary['val_ann_file'])
    for idx in range(len(dataset)):
        sample = dataset[idx]['data_samples']
        anns = [a for a in coco['annotations']
                if a['image_id'] == sample.metainfo['img_id']]
        # test pipeline: LoadAnnotations after Resize -> original scale
        masks = sample.gt_instances.masks.to_ndarray()
        for mask, ann in zip(masks, anns):
            assert mask.sum() == pytest.approx(ann['area'], rel=0.15, abs=8)


def test_segm_metric_full_ap_for_ground_truth(extra_set):
    from mmdet.evaluation import CocoMetric
    from pycocotools import mask as mask_utils
    _, summary = extra_set
    coco = _load(summary['val_ann_file'])
    size = SMALL['img_size']
    metric = CocoMetric(ann_file=summary['val_ann_file'],
                        metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=SYNTHETIC_CLASSES)
    samples = []
    for img in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        masks = np.stack([
            mask_utils.decode(mask_utils.merge(
                mask_utils.frPyObjects(a['segmentation'], size, size)))
            for a in anns]).astype(bool)
        samples.append(dict(
            img_id=img['id'], ori_shape=(size, size),
            pred_instances=dict(
                bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                                     (a['bbox'] for a in anns)]).float(),
                scores=torch.ones(len(anns)),
                labels=torch.tensor([a['category_id'] - 1 for a in anns]),
                masks=torch.from_numpy(masks))))
    metric.process({}, samples)
    results = metric.evaluate(size=len(samples))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0)
    assert results['coco/segm_mAP'] == pytest.approx(1.0)


def test_changed_args_regenerate_and_drop_stale_images(tmp_path):
    root = str(tmp_path / 'data')
    args = dict(num_train=3, num_val=2, img_size=64, seed=0)
    assert generate_synthetic_coco(root, **args)['generated']
    summary = generate_synthetic_coco(root, **dict(args, num_train=2))
    assert summary['generated']
    assert sorted(os.listdir(summary['train_img_dir'])) == [
        '000001.png', '000002.png']


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_synthetic_coco(str(tmp_path), min_objects=0)
    with pytest.raises(ValueError):
        generate_synthetic_coco(str(tmp_path), min_objects=4, max_objects=2)
    with pytest.raises(ValueError):
        generate_synthetic_coco(str(tmp_path), img_size=16)
