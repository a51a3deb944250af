"""`tools/train.py --amp`: mmdet's float16 AMP with a GPU, bfloat16 on a
CPU-only machine (CPUAmpOptimWrapper)."""
import argparse
import importlib.util

import pytest
import torch

from sea_kd.compat import is_cpu_only

from .helpers import DEMO, REPO, data_options, python, run_tool, short_run

FI_CONFIG = f'{DEMO}/fi_retinanet_r18_to_r18-w16_synthetic.py'


def train_script():
    spec = importlib.util.spec_from_file_location('sea_kd_train_tool',
                                                  f'{REPO}/tools/train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_cfg(tmp_path, amp, cfg_options=None):
    args = argparse.Namespace(
        config=FI_CONFIG, work_dir=str(tmp_path), amp=amp,
        auto_scale_lr=False, resume=None, cfg_options=cfg_options,
        launcher='none')
    return train_script().build_cfg(args)


def test_amp_flag_picks_the_wrapper_of_the_machine(tmp_path):
    cfg = build_cfg(tmp_path, amp=True)
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    if is_cpu_only():
        assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    else:  # mmdet's behaviour: float16 (dtype None), dynamic loss scale
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.get('dtype') is None
    assert build_cfg(tmp_path, amp=False).optim_wrapper.type == \
        'OptimWrapper'


@pytest.mark.skipif(not is_cpu_only(), reason='CPU-only machines')
def test_config_amp_optim_wrapper_becomes_the_cpu_one(tmp_path, capsys):
    cfg = build_cfg(tmp_path, amp=False,
                    cfg_options={'optim_wrapper.type': 'AmpOptimWrapper'})
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'bfloat16' in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(not is_cpu_only(), reason='CPU-only machines')
def test_train_with_amp_on_cpu(tmp_path, synthetic_root,
                               retina_teacher_ckpt):
    work = tmp_path / 'fi_amp'
    out = run_tool(python('tools/train.py', FI_CONFIG, '--amp',
                          '--work-dir', work, '--cfg-options',
                          *data_options(synthetic_root),
                          f'model.teacher_ckpt={retina_teacher_ckpt}',
                          *short_run(2)))
    assert 'No GPU: mixed precision runs on the CPU in bfloat16' \
        in out.stdout
    assert 'loss_fi_feat' in out.stdout
    assert 'nan' not in out.stdout.split('Iter(train)')[-1].lower()
    ckpt = torch.load(work / 'iter_2.pth', map_location='cpu')
    # the loss scaler's state is saved with the optimizer's
    assert ckpt['optimizer']['loss_scaler']['scale'] > 0
