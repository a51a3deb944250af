"""The SEA configs load and name the right distiller, detectors and data."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.models.distillers import Distiller
from sea_kd.models.losses.sea_loss import SEALoss
from sea_kd.utils import load_model_cfg

from ..conftest import REPO

COCO = {
    'sea_retinanet_r101_to_r50_fpn_1x_coco.py': ('RetinaNet', 12),
    'sea_retinanet_r101_to_r50_fpn_2x_coco.py': ('RetinaNet', 24),
    'sea_fcos_r101_to_r50_fpn_1x_coco.py': ('FCOS', 12),
    'sea_fcos_r101_to_r50_fpn_2x_coco.py': ('FCOS', 24),
    'sea_faster-rcnn_r101_to_r50_fpn_1x_coco.py': ('FasterRCNN', 12),
    'sea_mask-rcnn_r101_to_r50_fpn_1x_coco.py': ('MaskRCNN', 12),
}
DEMO = {
    'sea_retinanet_r18_to_r18-w16_synthetic.py': 'RetinaNet',
    'sea_faster-rcnn_r18_to_r18-w16_synthetic.py': 'FasterRCNN',
}


def test_all_sea_configs_listed():
    found = {osp.basename(p) for p in glob.glob(
        osp.join(REPO, 'configs', 'sea', '*.py'))}
    assert found == set(COCO)


@pytest.mark.parametrize('name', sorted(COCO))
def test_coco_config(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'sea', name))
    detector, epochs = COCO[name]
    assert cfg.model.type == 'Distiller'
    method = cfg.model.methods[0]
    assert len(cfg.model.methods) == 1 and method.type == 'SEA'
    assert cfg.custom_imports.imports == ['sea_kd']
    assert MODELS.get(method.loss_sea.type) is SEALoss
    SEALoss(**{k: v for k, v in method.loss_sea.items() if k != 'type'})
    student = load_model_cfg(cfg.model.student, 'student')
    teacher = load_model_cfg(cfg.model.teacher, 'teacher')
    assert student.type == teacher.type == detector
    assert student.backbone.depth == 50 and teacher.backbone.depth == 101
    assert student.neck.num_outs == teacher.neck.num_outs == 5
    assert cfg.model.teacher_ckpt.startswith('checkpoints/')
    assert cfg.train_cfg.max_epochs == epochs
    loads = [t for t in cfg.train_dataloader.dataset.pipeline
             if t.type == 'LoadAnnotations'][0]
    assert loads.get('with_mask', False) == (detector == 'MaskRCNN')


@pytest.mark.parametrize('name', sorted(DEMO))
def test_demo_config_builds(name, save_state):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name))
    assert cfg.model.teacher_ckpt.startswith('work_dirs/demo/')
    assert cfg.model.type == 'Distiller'
    assert [m.type for m in cfg.model.methods] == ['SEA']
    # the demo trains the teacher; a saved untrained one has the same keys
    teacher = MODELS.build(load_model_cfg(cfg.model.teacher, 'teacher'))
    ckpt = save_state(teacher, 'teacher.pth')
    model = MODELS.build(dict(cfg.model, teacher_ckpt=ckpt))
    assert isinstance(model, Distiller) and list(model.methods) == ['sea']
    assert type(model.student).__name__ == DEMO[name]
    assert type(model.teacher).__name__ == DEMO[name]
    method = model.methods['sea']
    assert isinstance(method.loss_sea, SEALoss)
    assert method.strides is not None and len(method.strides) == 5
