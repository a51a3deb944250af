"""The TBD configs: the demo distillers build in full, with the terms each
ablation keeps; the COCO configs pair the intended teachers and schedules."""
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.utils import load_model_cfg

from ..conftest import REPO

DEMO = {
    'tbd': {'hd', 'tfd'},
    'hd': {'hd'},
    'tfd': {'tfd'},
}


@pytest.mark.parametrize('method', sorted(DEMO))
def test_demo_configs_build_with_their_terms(method, save_state):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'demo',
        f'{method}_retinanet_r18_to_r18-w16_synthetic.py'))
    teacher = MODELS.build(load_model_cfg(cfg.model.teacher, 'teacher'))
    cfg.model.teacher_ckpt = save_state(teacher, 'teacher.pth')
    model = MODELS.build(cfg.model).methods['tbd']
    terms = {t for t in ('hd', 'tfd')
             if getattr(model, f'loss_{t}') is not None}
    assert terms == DEMO[method]
    assert (model.adapters is not None) == ('tfd' in terms)
    if model.loss_tfd is not None:
        assert model.loss_tfd.task_weights == 'dynamic'
    if model.loss_hd is not None:
        assert model.loss_hd.positive_target == 'teacher'
        assert model.loss_hd.harmony_weight
    assert model.kappa == 0.5


@pytest.mark.parametrize('teacher', ['x101-64x4d', 'r101'])
@pytest.mark.parametrize('schedule,epochs', [('1x', 12), ('2x', 24)])
def test_coco_configs_pair_teachers_and_schedules(teacher, schedule,
                                                   epochs):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'tbd',
        f'tbd_retinanet_{teacher}_to_r50_fpn_{schedule}_coco.py'))
    assert cfg.model.type == 'Distiller'
    assert [m.type for m in cfg.model.methods] == ['TBD']
    assert cfg.model.teacher == \
        f'mmdet::retinanet/retinanet_{teacher}_fpn_{schedule}_coco.py'
    assert cfg.model.student == \
        f'mmdet::retinanet/retinanet_r50_fpn_{schedule}_coco.py'
    assert cfg.model.teacher_ckpt.endswith(
        f'retinanet_{teacher}_fpn_{schedule}_coco.pth')
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[-1].end == epochs
