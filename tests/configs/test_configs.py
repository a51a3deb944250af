"""Every config of the repository parses; every distiller config's teacher
and student build and pass the distiller's pair checks."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.models.detectors.pair_checks import (check_same_classes,
                                                 check_same_dense_layout)
from sea_kd.utils import load_model_cfg

from ..conftest import REPO

CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_configs_found():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config(path):
    cfg = Config.fromfile(path)
    model_cls = MODELS.get(cfg.model.type)
    assert model_cls is not None, cfg.model.type
    if 'student' not in cfg.model:
        return
    assert cfg.custom_imports.imports == ['sea_kd']
    student = MODELS.build(load_model_cfg(cfg.model.student, 'student'))
    teacher = MODELS.build(load_model_cfg(cfg.model.teacher, 'teacher'))
    check_same_classes(student, teacher)
    if getattr(model_cls, 'method_type', ''):  # a one-method alias
        kinds = [model_cls.method_type]
    else:
        kinds = [m['type'] for m in cfg.model.methods]
    assert kinds, path
    for kind in kinds:
        method_cls = MODELS.get(kind)
        assert method_cls is not None, kind
        if method_cls.requires_same_dense_layout:
            check_same_dense_layout(student, teacher)
