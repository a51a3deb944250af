import os.path as osp

import pytest
from mmengine.runner import Runner

from sea_kd.datasets import generate_synthetic_coco

from .helpers import IMG_SIZE, run_cfg, tiny_teacher_cfg

TEACHER_ITERS = 100


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """16 training images of 64 px (also the validation images here)."""
    root = tmp_path_factory.mktemp('tiny_coco')
    generate_synthetic_coco(str(root), num_train=16, num_val=4,
                            img_size=IMG_SIZE, seed=3)
    return str(root)


@pytest.fixture(scope='session')
def tiny_teacher_ckpt(tiny_coco, tmp_path_factory):
    """A tiny RetinaNet trained by the Runner until it scores on the set."""
    work = str(tmp_path_factory.mktemp('tiny_teacher'))
    cfg = run_cfg(tiny_coco, tiny_teacher_cfg(), work,
                  max_iters=TEACHER_ITERS, val_interval=TEACHER_ITERS + 1)
    Runner.from_cfg(cfg).train()
    return osp.join(work, f'iter_{TEACHER_ITERS}.pth')
