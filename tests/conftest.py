"""Shared fixtures: tiny detectors built from mmdet's packaged configs."""
import copy
import functools
import http.server
import os.path as osp
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.hub import get_config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import sea_kd  # noqa: F401
from sea_kd.analysis.synthetic_coco import generate_synthetic_coco
from tests.tools.helpers import (DEMO, cores_per_worker, data_options, python,
                                 run_tool, short_run)

register_all_modules(init_default_scope=True)
# each pytest-xdist worker computes on its share of the cores
torch.set_num_threads(min(torch.get_num_threads(), cores_per_worker()))

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: mmdet packaged configs of the detector families the capture serves.
DETECTOR_CONFIGS = {
    'retinanet': 'retinanet/retinanet_r50_fpn_1x_coco.py',
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
    'gfl': 'gfl/gfl_r50_fpn_1x_coco.py',
    'tood': 'tood/tood_r50_fpn_1x_coco.py',
    'fovea': 'foveabox/fovea_r50_fpn_4xb4-1x_coco.py',
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'cascade_rcnn': 'cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    'rtmdet': 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'rtmdet_ins': 'rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py',
    'yolox': 'yolox/yolox_tiny_8xb8-300e_coco.py',
    'dino': 'dino/dino-4scale_r50_8xb2-12e_coco.py',
    'detr': 'detr/detr_r50_8xb2-150e_coco.py',
    'deformable_detr': 'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    'dab_detr': 'dab_detr/dab-detr_r50_8xb2-50e_coco.py',
}

#: DETR-family kinds (a transformer encoder and decoder after the neck)
DETR_FAMILIES = ('dino', 'detr', 'deformable_detr', 'dab_detr')

#: families whose backbone is not a ResNet (their width is a factor)
CSP_FAMILIES = ('rtmdet', 'rtmdet_ins', 'yolox')

#: heads mmdet ships no packaged config for, as (config kind, head changes)
VARIANTS = {
    # the plain RTMDetHead: shared-free towers, objectness branch
    'rtmdet_plain': ('rtmdet', dict(type='RTMDetHead', with_objectness=True,
                                    act_cfg=dict(type='SiLU'))),
}

#: detector options mmdet ships configs for but the kinds above leave at
#: their defaults, as (config kind, detector changes)
DETECTOR_VARIANTS = {
    # mmdet's deformable-detr-refine-twostage configs
    'deformable_detr_two_stage': ('deformable_detr',
                                  dict(as_two_stage=True,
                                       with_box_refine=True)),
}


def _tiny_csp_cfg(cfg: ConfigDict, num_classes: int, base_channels: int,
                  neck_channels: int) -> ConfigDict:
    """RTMDet / YOLOX with a CSP backbone of ``base_channels`` stem width
    (widen factor ``base_channels / 64``)."""
    factor = base_channels / 64
    cfg.backbone.update(widen_factor=factor, init_cfg=None)
    cfg.neck.update(in_channels=[int(c * factor) for c in (256, 512, 1024)],
                    out_channels=neck_channels)
    cfg.bbox_head.update(num_classes=num_classes, in_channels=neck_channels,
                         feat_channels=neck_channels)
    cfg.data_preprocessor.pop('batch_augments', None)
    return cfg


def _tiny_detr_cfg(cfg: ConfigDict, num_classes: int,
                   base_channels: int) -> ConfigDict:
    """A DETR-family detector with a narrow ResNet-18, one encoder and two
    decoder layers and 30 queries (the transformer keeps mmdet's 256
    dimensions, which its positional encodings assume)."""
    cfg.backbone.update(depth=18, base_channels=base_channels,
                        init_cfg=None)
    cfg.neck.in_channels = [base_channels * 2**i
                            for i in cfg.backbone.out_indices]
    cfg.encoder.num_layers = 1
    cfg.decoder.num_layers = 2
    cfg.bbox_head.num_classes = num_classes
    cfg.num_queries = 30
    if 'dn_cfg' in cfg:
        cfg.dn_cfg.group_cfg.num_dn_queries = 10
    return cfg


def tiny_detector_cfg(kind: str,
                      num_classes: int = 3,
                      base_channels: int = 8,
                      neck_channels: int = 32) -> ConfigDict:
    """A few-thousand-parameter version of an mmdet detector config."""
    if kind in VARIANTS:
        base, head = VARIANTS[kind]
        cfg = tiny_detector_cfg(base, num_classes, base_channels,
                                neck_channels)
        for key in ('share_conv', 'use_depthwise', 'pred_kernel_size',
                    'exp_on_reg', 'norm_cfg'):
            cfg.bbox_head.pop(key, None)
        cfg.bbox_head.update(head)
        return cfg
    if kind in DETECTOR_VARIANTS:
        base, changes = DETECTOR_VARIANTS[kind]
        cfg = tiny_detector_cfg(base, num_classes, base_channels,
                                neck_channels)
        cfg.update(changes)
        return cfg
    cfg = copy.deepcopy(get_config(f"mmdet::{DETECTOR_CONFIGS[kind]}").model)
    if kind in CSP_FAMILIES:
        return _tiny_csp_cfg(cfg, num_classes, base_channels, neck_channels)
    if kind in DETR_FAMILIES:
        return _tiny_detr_cfg(cfg, num_classes, base_channels)
    cfg.backbone.update(
        depth=18, base_channels=base_channels, init_cfg=None,
        frozen_stages=-1, norm_eval=False)
    cfg.backbone.pop('stem_channels', None)
    cfg.neck.in_channels = [base_channels * 2**i for i in range(4)]
    cfg.neck.out_channels = neck_channels
    if 'bbox_head' in cfg:
        cfg.bbox_head.update(
            num_classes=num_classes, in_channels=neck_channels,
            feat_channels=neck_channels, stacked_convs=1)
    if 'rpn_head' in cfg:
        cfg.rpn_head.update(in_channels=neck_channels,
                            feat_channels=neck_channels)
        cfg.roi_head.bbox_roi_extractor.out_channels = neck_channels
        heads = cfg.roi_head.bbox_head
        for head in heads if isinstance(heads, list) else [heads]:
            head.update(in_channels=neck_channels, fc_out_channels=32,
                        num_classes=num_classes)
        for rcnn in (cfg.train_cfg.rcnn if isinstance(
                cfg.train_cfg.rcnn, list) else [cfg.train_cfg.rcnn]):
            rcnn.sampler.num = 32
        cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
        if 'mask_head' in cfg.roi_head:
            cfg.roi_head.mask_roi_extractor.out_channels = neck_channels
            cfg.roi_head.mask_head.update(
                in_channels=neck_channels, conv_out_channels=8,
                num_convs=1, num_classes=num_classes)
    return cfg


def build(cfg) -> torch.nn.Module:
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def make_batch(model, batch_size=2, shapes=None, num_items=None,
               num_classes=3, with_mask=False):
    """A preprocessed batch of random images with random boxes."""
    shapes = shapes or [(3, 64, 64)] * batch_size
    packed = demo_mm_inputs(
        batch_size=batch_size, image_shapes=shapes,
        num_items=num_items or [3] * batch_size, num_classes=num_classes,
        with_mask=with_mask)
    data = model.data_preprocessor(packed, True)
    return data['inputs'], data['data_samples']


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Every test starts in mmdet's scope, whatever an earlier Runner set."""
    init_default_scope('mmdet')


@pytest.fixture
def save_state(tmp_path):
    """Save a model's state dict as an mmengine-style checkpoint file."""

    def _save(model, name='model.pth'):
        path = tmp_path / name
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
        return str(path)

    return _save


def tiny_retina_pair(save_state, student_neck: int = 32) -> tuple:
    """``(student_cfg, teacher_cfg, teacher_ckpt, teacher)``: an
    8-base-channel RetinaNet student with a ``student_neck``-channel FPN and
    a 16-base-channel teacher with a 64-channel FPN, its weights saved."""
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8,
                              neck_channels=student_neck)
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16,
                              neck_channels=64)
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, 'teacher.pth'), teacher


# ------------------------------------------- generated data and teachers
# (session-wide: the tool tests and the security tests share them)
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


# ------------------------------------------------- a local HTTP server
@pytest.fixture
def server(tmp_path: Path, monkeypatch) -> Iterator[tuple]:
    """A local HTTP server over ``tmp_path/served`` and an empty hub cache."""
    served = tmp_path / 'served'
    served.mkdir()
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY',
                'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('no_proxy', '*')
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f'http://127.0.0.1:{httpd.server_address[1]}', \
            tmp_path / 'hub' / 'checkpoints'
    finally:
        httpd.shutdown()
        httpd.server_close()


#: iterations of the tiny teacher of the runner tests
TEACHER_ITERS = 100


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """16 training images of 64 px (also the validation images here)."""
    from tests.engine.helpers import IMG_SIZE
    root = tmp_path_factory.mktemp('tiny_coco')
    generate_synthetic_coco(str(root), num_train=16, num_val=4,
                            img_size=IMG_SIZE, seed=3)
    return str(root)


@pytest.fixture(scope='session')
def tiny_teacher_ckpt(tiny_coco, tmp_path_factory):
    """A tiny RetinaNet trained by the Runner until it scores on the set."""
    from tests.engine.helpers import run_cfg, tiny_teacher_cfg
    work = str(tmp_path_factory.mktemp('tiny_teacher'))
    cfg = run_cfg(tiny_coco, tiny_teacher_cfg(), work,
                  max_iters=TEACHER_ITERS, val_interval=TEACHER_ITERS + 1)
    Runner.from_cfg(cfg).train()
    return osp.join(work, f'iter_{TEACHER_ITERS}.pth')
