"""The G-DetKD configs: COCO configs pair the paper's teachers and students
with the right pipeline; the demo distillers build in full."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.models.distillers import Distiller
from sea_kd.models.losses import (CKDLoss, ClassAwareRegKDLoss,
                                  RCNNLogitKDLoss, SGFILoss)
from sea_kd.models.methods.gdetkd import RegionProjector
from sea_kd.utils import load_model_cfg

from ..conftest import REPO

COCO = {  # config -> (teacher backbone, student type, student depth)
    'gdetkd_faster-rcnn-r50_to_faster-rcnn-r18_fpn_1x_coco.py':
    ('ResNet', 'FasterRCNN', 18),
    'gdetkd_faster-rcnn-r50_to_retinanet-r18_fpn_1x_coco.py':
    ('ResNet', 'RetinaNet', 18),
    'gdetkd_faster-rcnn-r50_to_fcos-r18_fpn_1x_coco.py':
    ('ResNet', 'FCOS', 18),
    'gdetkd_faster-rcnn-x101-64x4d_to_faster-rcnn-r50_fpn_1x_coco.py':
    ('ResNeXt', 'FasterRCNN', 50),
    'gdetkd_faster-rcnn-x101-64x4d_to_retinanet-r50_fpn_1x_coco.py':
    ('ResNeXt', 'RetinaNet', 50),
    'gdetkd_faster-rcnn-x101-64x4d_to_fcos-r50_fpn_1x_coco.py':
    ('ResNeXt', 'FCOS', 50),
    'gdetkd_cascade-rcnn-x101-64x4d_to_cascade-rcnn-r50_fpn_1x_coco.py':
    ('ResNeXt', 'CascadeRCNN', 50),
}
TWO_STAGE = ('FasterRCNN', 'CascadeRCNN')
DEMO = {
    'gdetkd_faster-rcnn_r18_to_r18-w16_synthetic.py':
    ('FasterRCNN', 'homogeneous', {'sgfi', 'ckd', 'cls', 'reg'}),
    'gdetkd_faster-rcnn-r18_to_retinanet-r18-w16_synthetic.py':
    ('RetinaNet', 'heterogeneous', {'sgfi', 'ckd'}),
}
NORMALISATION = ('mean', 'std', 'bgr_to_rgb')


def test_all_gdetkd_configs_listed():
    found = {osp.basename(p) for p in glob.glob(
        osp.join(REPO, 'configs', 'gdetkd', '*.py'))}
    assert found == set(COCO)


@pytest.mark.parametrize('name', sorted(COCO))
def test_coco_config(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'gdetkd', name))
    backbone, student_type, depth = COCO[name]
    assert cfg.model.type == 'Distiller'
    method = cfg.model.methods[0]
    assert len(cfg.model.methods) == 1 and method.type == 'GDetKD'
    assert cfg.custom_imports.imports == ['sea_kd']
    student = load_model_cfg(cfg.model.student, 'student')
    teacher = load_model_cfg(cfg.model.teacher, 'teacher')
    assert teacher.type == ('CascadeRCNN' if student_type == 'CascadeRCNN'
                            else 'FasterRCNN')
    assert teacher.backbone.type == backbone
    rcnn = teacher.train_cfg.rcnn  # a Cascade R-CNN's: one per stage
    first = rcnn[0] if isinstance(rcnn, list) else rcnn  # G-DetKD's stage
    assert first.sampler.num == 512
    assert first.sampler.pos_fraction == 0.25
    assert student.type == student_type and student.backbone.depth == depth
    assert student.backbone.get('style', 'pytorch') == 'pytorch'
    for key in NORMALISATION:  # the teacher sees the student's batch
        assert student.data_preprocessor[key] == \
            teacher.data_preprocessor[key], key
    assert cfg.model.teacher_ckpt.startswith('checkpoints/')
    assert cfg.train_cfg.max_epochs == 12
    assert MODELS.get(method.loss_sgfi.type) is SGFILoss
    assert MODELS.get(method.loss_ckd.type) is CKDLoss
    assert method.loss_sgfi.loss_weight == 1.0
    assert method.loss_ckd.loss_weight == 0.5
    if student_type in TWO_STAGE:
        assert MODELS.get(method.loss_cls.type) is RCNNLogitKDLoss
        assert MODELS.get(method.loss_reg.type) is ClassAwareRegKDLoss
        assert method.head_transfer is True
    else:
        assert method.loss_cls is None and method.loss_reg is None
        assert MODELS.get(method.region_projector.type) is \
            RegionProjector
        # the dense student's representation: its head tower, unprojected
        # keys (the third-party reading; docs/methods/gdetkd.md)
        assert method.dense_region_repr == 'head_tower'
        assert method.region_projector.pooled_size == 1
        assert method.loss_ckd.key_space == 'teacher'
        assert method.get('max_regions_per_img') is None
        assert method.proposal_cfg.nms_pre == 2000
        assert method.proposal_cfg.max_per_img == 1000
        assert method.proposal_cfg.nms.iou_threshold == 0.7


@pytest.mark.parametrize('name', sorted(DEMO))
def test_demo_config_builds(name, save_state):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name))
    student_type, pipeline, terms = DEMO[name]
    assert cfg.model.teacher_ckpt.startswith('work_dirs/demo/')
    # the demo trains the teacher; a saved untrained one has the same keys
    teacher = MODELS.build(load_model_cfg(cfg.model.teacher, 'teacher'))
    ckpt = save_state(teacher, 'teacher.pth')
    model = MODELS.build(dict(cfg.model, teacher_ckpt=ckpt))
    assert isinstance(model, Distiller) and list(model.methods) == ['gdetkd']
    method = model.methods['gdetkd']
    assert method.pipeline == pipeline
    assert type(model.student).__name__ == student_type
    assert type(model.teacher).__name__ == 'FasterRCNN'
    built = {t for t in ('sgfi', 'ckd', 'cls', 'reg')
             if getattr(method, f'loss_{t}') is not None}
    assert built == terms
    assert method.loss_sgfi.teacher_channels == 128
    assert method.loss_ckd.teacher_channels == 256  # teacher fc_out
    if pipeline == 'homogeneous':
        assert method.loss_ckd.student_channels == 128  # student fc_out
        assert method.head_transfer
    else:
        assert method.region_projector.out_channels == 256
        assert method.region_projector.fc1.in_features == 64  # tower
        assert method.dense_region_repr == 'head_tower'
        assert method.tower_finest_scale == 16.  # the student's anchors
        assert method.loss_ckd.key_space == 'teacher'
        # 16 regions per image at the teacher sampler's 25 % positives
        assert method.region_sampler.num == 16
        assert method.region_sampler.pos_fraction == 0.25
        assert method.max_regions_per_img is None
        assert method.sgfi_regions == 'positive'
