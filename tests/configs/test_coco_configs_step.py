"""Every distiller config for real data (COCO and own data) builds with
random weights and runs one training step: finite losses, each method's
terms present, gradients in the student and none in the teacher."""
import os.path as osp
import re

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.analysis.random_weights import (random_batch,
                                            random_weights_config,
                                            training_batch_size,
                                            training_image_size,
                                            without_pretrained)
from sea_kd.models.capture import is_query_detector

from ..conftest import REPO
from .test_configs import CONFIGS

#: mmdet's 1x, 2x and 3x configs of one detector build the same model
SCHEDULE = re.compile(r'_[123]x_coco')


def _distiller_configs():
    """Real-data distiller configs, one per distinct model: configs that
    differ only in schedule (1x and 2x of one pair, whose mmdet student
    configs differ only in schedule) build the same distiller, whose step
    is run once."""
    found, models = [], []
    for path in CONFIGS:
        if any(part in path for part in ('/demo/', '/students/')):
            continue
        model = Config.fromfile(path).model.to_dict()
        if 'student' not in model:
            continue
        for role in ('student', 'teacher'):
            if isinstance(model[role], str):
                model[role] = SCHEDULE.sub('_Nx_coco', model[role])
        model.pop('teacher_ckpt', None)
        if model not in models:
            models.append(model)
            found.append(path)
    return found


REAL_DATA_CONFIGS = _distiller_configs()


def method_prefixes(model):
    return [f'loss_{name}_' for name in model.method_names]


@pytest.fixture(scope='module')
def teachers_dir(tmp_path_factory):
    """Random teachers, shared by the configs that have the same one."""
    return str(tmp_path_factory.mktemp('random_teachers'))


@pytest.mark.parametrize('path', REAL_DATA_CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in REAL_DATA_CONFIGS])
def test_one_step_on_random_weights(path, teachers_dir):
    cfg = Config.fromfile(path)
    assert training_batch_size(cfg) >= 1
    h, w = training_image_size(cfg)
    if '/own_data/' not in path:  # own data: the generated images' 128 px
        assert min(h, w) >= 400, (h, w)  # COCO's training scale was found
    cfg = random_weights_config(cfg, teachers_dir)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    # a small image keeps the step quick (ResNeXt's grouped convolutions
    # are slow on CPU); the configs' own scale is what tools/benchmark.py
    # --random measures
    # (DETR-family detectors select their queries among the encoder's
    # positions: DINO's 900 need an image of at least 1000 of them)
    size = (256, 320) if is_query_detector(model.student) else (96, 128)
    batch = random_batch(model, batch_size=1, image_size=size, num_boxes=3)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    for prefix in method_prefixes(model):
        terms = [k for k in losses if k.startswith(prefix)]
        assert terms, (path, prefix, sorted(losses))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_pretrained_init_is_removed_everywhere():
    cfg = dict(type='X', backbone=dict(
        type='ResNet', init_cfg=dict(type='Pretrained', checkpoint='t://r')),
        neck=dict(type='FPN', init_cfg=[dict(type='Xavier')]),
        head=dict(init_cfg=[dict(type='Pretrained', checkpoint='a'),
                            dict(type='Normal')]))
    out = without_pretrained(cfg)
    assert 'init_cfg' not in out['backbone']
    assert out['neck']['init_cfg'] == [dict(type='Xavier')]
    assert out['head']['init_cfg'] == [dict(type='Normal')]
    assert cfg['backbone']['init_cfg']['type'] == 'Pretrained'  # a copy


def test_training_image_size_reads_the_largest_scale():
    cfg = Config(dict(train_dataloader=dict(batch_size=2, dataset=dict(
        pipeline=[dict(type='Resize', scale=(1000, 600)),
                  dict(type='RandomChoiceResize',
                       scales=[(1333, 640), (1333, 800)])]))))
    assert training_image_size(cfg) == (800, 1333)
    cfg.train_dataloader.dataset.pipeline.append(
        dict(type='Resize', scale=(1000, 600)))  # the last resize decides
    assert training_image_size(cfg) == (600, 1000)
    with pytest.raises(ValueError, match='no Resize'):
        training_image_size(Config(dict(train_dataloader=dict())))


def test_training_image_size_follows_the_pipeline_in_order():
    """The last resize of each branch decides, capped by an absolute crop
    and raised by a pad; keep_ratio scales bound the long and short edge;
    a mixing dataset's own pipeline is the one that gives the images."""
    def size(pipeline, wrap=False):
        dataset = dict(pipeline=pipeline)
        if wrap:  # YOLOX-style: the inner dataset only loads
            dataset = dict(type='MultiImageMixDataset', pipeline=pipeline,
                           dataset=dict(pipeline=[dict(
                               type='Resize', scale=(4000, 4000))]))
        return training_image_size(Config(dict(
            train_dataloader=dict(dataset=dataset))))

    # DINO: a branch resizes to 4200 px before a crop and a final resize
    coco = [(480, 1333), (800, 1333)]
    assert size([dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=coco, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(600, 4200)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range',
              crop_size=(384, 600)),
         dict(type='RandomChoiceResize', scales=coco, keep_ratio=True)]])
    ]) == (800, 1333)
    # a branch that ends in the crop: at most 600 x 600
    assert size([dict(type='Resize', scale=(4200, 600), keep_ratio=True),
                 dict(type='RandomCrop', crop_type='absolute_range',
                      crop_size=(384, 600))]) == (600, 600)
    # RTMDet: resized up to 2 x 1280, cropped to 640, padded to 640
    assert size([dict(type='RandomResize', scale=(1280, 1280),
                      ratio_range=(0.1, 2.0), keep_ratio=True),
                 dict(type='RandomCrop', crop_size=(640, 640)),
                 dict(type='Pad', size=(640, 640))]) == (640, 640)
    assert size([dict(type='RandomResize', scale=(640, 480),
                      ratio_range=(0.5, 1.5))]) == (720, 960)
    # keep_ratio reads either order as a landscape canvas; without it the
    # scale is mmcv's (w, h)
    assert size([dict(type='Resize', scale=(800, 1333), keep_ratio=True)]) \
        == (800, 1333)
    assert size([dict(type='Resize', scale=(640, 1024))]) == (1024, 640)
    assert size([dict(type='Resize', scale=(640, 640))], wrap=True) == \
        (640, 640)
    # wrappers: RandomApply may or may not resize, AutoAugment picks one
    # policy
    coco_resize = dict(type='RandomChoiceResize', scales=coco,
                       keep_ratio=True)
    small = dict(type='Resize', scale=(640, 480), keep_ratio=True)
    assert size([small, dict(type='RandomApply', transforms=[coco_resize])
                 ]) == (800, 1333)
    assert size([dict(type='RandomApply', transforms=coco_resize)]) == \
        (800, 1333)
    assert size([small, dict(type='AutoAugment', policies=[
        [coco_resize], [dict(type='Resize', scale=(320, 320))]])]) == \
        (800, 1333)
    # other resizes and pads
    assert size([dict(type='Resize', scale=(1333, 800)),
                 dict(type='FixShapeResize', width=512, height=384)]) == \
        (384, 512)
    assert size([dict(type='Resize', scale=(1000, 600)),
                 dict(type='Resize', scale_factor=0.5)]) == (300, 500)
    assert size([dict(type='Resize', scale=640)]) == (640, 640)
    assert size([dict(type='Resize', scale=(1333, 800), keep_ratio=True),
                 dict(type='Pad', pad_to_square=True)]) == (1333, 1333)
    assert size([dict(type='Resize', scale=(1333, 800), keep_ratio=True),
                 dict(type='Pad', size_divisor=32)]) == (800, 1344)
    # keep_ratio allows a portrait image, which a portrait crop keeps
    assert size([dict(type='Resize', scale=(1333, 800), keep_ratio=True),
                 dict(type='RandomCrop', crop_size=(600, 1000))]) == \
        (1000, 600)
    # RandomResize between two scales: each side up to its larger bound,
    # no ratio_range then
    assert size([dict(type='RandomResize', scale=[(1000, 400), (600, 800)])
                 ]) == (800, 1000)
    assert size([dict(type='RandomResize', scale=[(1333, 640), (1333, 800)],
                      ratio_range=(0.5, 2.0), keep_ratio=True)]) == \
        (800, 1333)
    with pytest.raises(ValueError, match='give --image-size'):
        size([dict(type='Resize', keep_ratio=True)])


@pytest.mark.parametrize('config, expected', [
    ('hmld/hmld_dino-4scale_r50_to_r18_8xb2-12e_coco.py', (800, 1333)),
    ('kd_detr/kd-detr_dab-detr_r50_to_r18_8xb8-50e_coco.py', (800, 1333)),
    ('cwd/cwd_rtmdet_m_to_rtmdet_s_8xb32-300e_coco.py', (640, 640)),
    ('sea/sea_retinanet_r101_to_r50_fpn_1x_coco.py', (800, 1333))])
def test_training_image_size_of_the_shipped_pipelines(config, expected):
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    assert training_image_size(cfg) == expected
