"""Copies of a distiller (EMAHook's averaged model) share the teacher."""
import copy

import torch
from mmdet.models.layers import ExpMomentumEMA
from mmdet.registry import MODELS

from ...conftest import build, make_batch, tiny_detector_cfg


def _distiller(save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('rtmdet', base_channels=16, neck_channels=64)
    s_cfg = tiny_detector_cfg('rtmdet', base_channels=8, neck_channels=32)
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg,
        teacher_ckpt=save_state(build(t_cfg)),
        methods=[dict(type='CWD', adapter=dict(type='ConvAdapter'))]))
    model.init_weights()
    return model


def test_a_deep_copy_shares_the_teacher_only(save_state):
    model = _distiller(save_state)
    copied = copy.deepcopy(model)
    assert copied.teacher is model.teacher
    assert copied.student is not model.student
    for a, b in zip(model.parameters(), copied.parameters()):
        assert a is not b and torch.equal(a, b)
    # the copy's methods are bound to the copy's student
    assert copied.methods['cwd'].student is copied.student
    assert copied.methods['cwd'].teacher is model.teacher


def test_the_ema_model_averages_the_student_and_adapters(save_state):
    model = _distiller(save_state)
    ema = ExpMomentumEMA(model, momentum=0.5, update_buffers=True)
    assert ema.module.teacher is model.teacher
    ema.update_parameters(model)  # the first update copies
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    inputs, samples = make_batch(model)
    loss, _ = model.parse_losses(model.loss(inputs, samples))
    loss.backward()
    optimizer.step()
    ema.update_parameters(model)
    name = 'methods.cwd.adapters.0.conv.weight'
    live = dict(model.named_parameters())
    averaged = dict(ema.module.named_parameters())
    assert name in averaged
    # averaged: neither the start nor the stepped weights
    assert not torch.equal(live[name], averaged[name])
    start = dict(_distiller(save_state).named_parameters())[name]
    assert not torch.equal(start, averaged[name])
    assert set(averaged) == set(live)  # no teacher weight is averaged
