import os.path as osp

import pytest

from sea_kd.datasets import generate_synthetic_coco

from .helpers import DEMO, data_options, python, run_tool, short_run


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_coco')
    generate_synthetic_coco(str(root), num_train=16, num_val=8, seed=3)
    return str(root)


def _teacher_ckpt(config, synthetic_root, tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp('teacher')
    run_tool(python('tools/train.py', osp.join(DEMO, config),
                    '--work-dir', work, '--cfg-options',
                    *data_options(synthetic_root), *short_run(2)))
    return str(work / 'iter_2.pth')


@pytest.fixture(scope='session')
def retina_teacher_ckpt(synthetic_root, tmp_path_factory):
    """A real mmengine checkpoint of the demo teacher, from tools/train.py."""
    return _teacher_ckpt('retinanet_r18_synthetic.py', synthetic_root,
                         tmp_path_factory)


@pytest.fixture(scope='session')
def rtmdet_teacher_ckpt(synthetic_root, tmp_path_factory):
    """A real checkpoint of the RTMDet demo teacher, from tools/train.py."""
    return _teacher_ckpt('rtmdet_tiny_synthetic.py', synthetic_root,
                         tmp_path_factory)
