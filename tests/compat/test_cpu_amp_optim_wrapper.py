"""Tests for :mod:`sea_kd.compat.cpu_amp_optim_wrapper`."""
import copy

import pytest
import torch
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

from sea_kd.compat import CPUAmpOptimWrapper, use_cpu_amp


def model_and_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    return model, torch.randn(16, 4), torch.randn(16, 1)


def wrapper_for(model, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return OPTIM_WRAPPERS.build(dict(type='CPUAmpOptimWrapper',
                                     optimizer=optimizer, **kwargs))


def test_built_from_the_registry_as_an_amp_optim_wrapper():
    model, _, _ = model_and_batch()
    wrapper = wrapper_for(model)
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    assert isinstance(wrapper, AmpOptimWrapper)
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler.is_enabled()
    assert wrapper.loss_scaler.get_scale() == 2.0**16  # dynamic default


@pytest.mark.parametrize('loss_scale', ['dynamic', 512.0, None])
def test_step_equals_an_unscaled_bfloat16_step(loss_scale):
    model, x, y = model_and_batch()
    reference = copy.deepcopy(model)
    wrapper = wrapper_for(model, loss_scale=loss_scale)
    with wrapper.optim_context(model):
        out = model(x)
        assert out.dtype == torch.bfloat16
        loss = (out.float() - y).pow(2).mean()
    wrapper.update_params(loss)

    # the same step by hand: autocast forward, plain backward and SGD
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref_loss = (reference(x).float() - y).pow(2).mean()
    ref_loss.backward()
    torch.optim.SGD(reference.parameters(), lr=0.1).step()
    for p, ref in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, ref)
        assert p.dtype == torch.float32
    if loss_scale == 512.0:  # a static scale stays
        assert wrapper.loss_scaler.get_scale() == 512.0
    if loss_scale is None:
        assert not wrapper.loss_scaler.is_enabled()


def test_scaler_state_is_saved_and_restored():
    model, x, y = model_and_batch()
    wrapper = wrapper_for(model, loss_scale=dict(init_scale=64.0))
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == 64.0
    other = wrapper_for(copy.deepcopy(model))
    other.load_state_dict(copy.deepcopy(state))
    assert other.loss_scaler.get_scale() == 64.0


def test_bad_settings_are_refused():
    model, _, _ = model_and_batch()
    with pytest.raises(ValueError, match="runs in bfloat16.*dtype="
                       "'bfloat16'"):
        wrapper_for(model, dtype='float16')
    with pytest.raises(TypeError, match='loss_scale must be'):
        wrapper_for(model, loss_scale='static')
    with pytest.raises(ValueError, match='FSDP'):
        wrapper_for(model, use_fsdp=True)


def test_use_cpu_amp_converts_amp_configs_only():
    cfg = dict(type='AmpOptimWrapper', loss_scale='dynamic',
               optimizer=dict(type='SGD', lr=0.1))
    note = use_cpu_amp(cfg)
    assert cfg['type'] == 'CPUAmpOptimWrapper'
    assert cfg['dtype'] == 'bfloat16' and cfg['loss_scale'] == 'dynamic'
    assert 'bfloat16' in note
    plain = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    assert use_cpu_amp(plain) is None
    assert plain['type'] == 'OptimWrapper' and 'dtype' not in plain
