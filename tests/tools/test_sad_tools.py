"""SAD end to end: offline pseudo labels with tools/pseudo_label.py, and
online pseudo labels, each trained a few iterations through tools/train.py."""
import json
import os.path as osp

import pytest

from sea_kd.datasets import split_labeled_unlabeled

from .helpers import DEMO, data_options, python, run_tool, short_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def semi_root(synthetic_root):
    split_labeled_unlabeled(
        osp.join(synthetic_root, 'annotations', 'instances_train.json'), 0.5)
    return synthetic_root


def test_online_pseudo_labels(tmp_path, semi_root, retina_teacher_ckpt):
    work = tmp_path / 'online'
    out = run_tool(python(
        'tools/train.py',
        osp.join(DEMO, 'sad-online_retinanet_r18_to_r18-w16_synthetic.py'),
        '--work-dir', work, '--cfg-options',
        *data_options(semi_root, train_sources=2),
        f'model.teacher_ckpt={retina_teacher_ckpt}',
        'model.methods.0.pseudo_label.score_thr=0.0', *short_run(3)))
    assert 'loss_adl_cls' in out.stdout
    assert (work / 'iter_3.pth').exists()


def test_offline_pseudo_label_tool_then_training(tmp_path, semi_root,
                                                 retina_teacher_ckpt):
    ann = osp.join(semi_root, 'annotations')
    pseudo = osp.join(ann, 'instances_train_pseudo.json')
    out = run_tool(python(
        'tools/pseudo_label.py', osp.join(DEMO, 'retinanet_r18_synthetic.py'),
        retina_teacher_ckpt, pseudo, '--ann-file',
        osp.join(ann, 'instances_train_unlabeled.json'), '--img-dir',
        osp.join(semi_root, 'train'), '--score-thr', '0.0', '--cfg-options',
        'model.test_cfg.score_thr=0.0'))
    assert 'pseudo boxes on 8 of 8 images' in out.stdout
    with open(pseudo) as f:
        coco = json.load(f)
    assert coco['annotations'] and all(
        a['score'] >= 0.0 and len(a['bbox']) == 4 for a in coco['annotations'])
    # a threshold no detection reaches: nothing written, exit status 1
    empty = tmp_path / 'none.json'
    out = run_tool(python(
        'tools/pseudo_label.py', osp.join(DEMO, 'retinanet_r18_synthetic.py'),
        retina_teacher_ckpt, empty, '--image-folder',
        osp.join(semi_root, 'val'), '--score-thr', '1.01'), check=False)
    assert out.returncode == 1 and 'no pseudo boxes' in out.stdout
    assert not empty.exists()

    work = tmp_path / 'offline'
    out = run_tool(python(
        'tools/train.py',
        osp.join(DEMO, 'sad-offline_retinanet_r18_to_r18-w16_synthetic.py'),
        '--work-dir', work, '--cfg-options',
        *data_options(semi_root, train_sources=2),
        f'model.teacher_ckpt={retina_teacher_ckpt}', *short_run(3)))
    assert 'loss_adl_cls' in out.stdout
    assert (work / 'iter_3.pth').exists()
