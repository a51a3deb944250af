"""Distillers trained by mmengine's Runner on generated data: a teacher with
its own normalisation, and mixed precision (bfloat16 on CPU)."""
import copy

import pytest
import torch
from mmengine.optim import AmpOptimWrapper

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco
from sea_kd.compat import CPUAmpOptimWrapper, use_cpu_amp

from ...conftest import build, tiny_detector_cfg
from .runner_helpers import finite_losses, train_distiller
from .test_teacher_preprocessing import CAFFE_BGR

NUM_CLASSES = 6  # the generated data set's


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_96')
    generate_synthetic_coco(str(root), num_train=8, num_val=2, img_size=96,
                            seed=1)
    return str(root)


def pair(kind, tmp_path, caffe_teacher=False, s_channels=16,
         t_channels=32):
    """Student and teacher configs for the data set; the teacher's
    checkpoint."""
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg(kind, num_classes=NUM_CLASSES,
                              base_channels=8, neck_channels=s_channels)
    t_cfg = tiny_detector_cfg(kind, num_classes=NUM_CLASSES,
                              base_channels=16, neck_channels=t_channels)
    if caffe_teacher:
        t_cfg.data_preprocessor = copy.deepcopy(CAFFE_BGR)
    path = tmp_path / f'{kind}_teacher.pth'
    torch.save(dict(state_dict=build(t_cfg).state_dict(), meta=dict()),
               path)
    return s_cfg, t_cfg, str(path)


def distill_terms(losses, method):
    return {k: v for k, v in losses.items()
            if k.startswith(f'loss_{method}_')}


def test_teacher_with_its_own_normalisation_trains(data_root, tmp_path):
    s_cfg, t_cfg, ckpt = pair('retinanet', tmp_path, caffe_teacher=True)
    model = dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                 teacher_ckpt=ckpt, methods=[dict(type='FeatureImitation')])
    runner, steps = train_distiller(model, data_root, str(tmp_path / 'fi'))
    distiller = runner.model
    assert not distiller.teacher_shares_preprocessing
    assert len(steps.losses) == 2
    for losses in steps.losses:
        assert finite_losses(losses)
        assert torch.isfinite(losses['loss_fi_feat'])
    # each step's teacher saw its own preprocessing of the raw batch
    for raw, call in zip(steps.raw_batches, steps.teacher_tap.calls):
        own = distiller.teacher.data_preprocessor(raw, False)['inputs']
        torch.testing.assert_close(call.args[0], own, atol=1e-4,
                                   rtol=1e-6)


@pytest.mark.parametrize('method', ['tbd', 'gdetkd'])
def test_bfloat16_training_through_the_runner(method, data_root, tmp_path):
    if method == 'tbd':  # one-stage, with a caffe-style teacher
        s_cfg, t_cfg, ckpt = pair('retinanet', tmp_path, caffe_teacher=True,
                                  s_channels=32, t_channels=64)
        model = dict(type='Distiller', methods=[dict(type='TBD')])
    else:  # homogeneous G-DetKD: two-stage student, mmcv NMS and RoIAlign
        s_cfg, t_cfg, ckpt = pair('faster_rcnn', tmp_path)
        model = dict(type='Distiller', methods=[dict(type='GDetKD')])
    model.update(student=s_cfg, teacher=t_cfg, teacher_ckpt=ckpt)
    # what `tools/train.py --amp` makes of the config on a CPU-only machine
    optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                         loss_scale='dynamic',
                         optimizer=dict(type='SGD', lr=1e-3, momentum=0.9),
                         clip_grad=dict(max_norm=10))
    assert use_cpu_amp(optim_wrapper)
    runner, steps = train_distiller(model, data_root,
                                    str(tmp_path / method), optim_wrapper)

    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    assert isinstance(wrapper, AmpOptimWrapper)
    assert wrapper.cast_dtype == torch.bfloat16
    # the student's backbone ran in bfloat16 ...
    assert all(call.args[0][0].dtype == torch.bfloat16
               for call in steps.neck_tap.calls)
    # ... and the distillation terms are float32 and finite
    for losses in steps.losses:
        assert finite_losses(losses)
        terms = distill_terms(losses, method)
        assert terms
        for key, value in terms.items():
            assert value.dtype == torch.float32, key
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all()
               for p in runner.model.parameters())
    assert wrapper.loss_scaler.get_scale() > 0
