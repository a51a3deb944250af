"""Tests for :mod:`sea_kd.compat.checkpoint_safe_globals`.

A real checkpoint is written by an mmengine ``Runner`` (2 iterations on a toy
model, ``CheckpointHook``), so its ``message_hub`` holds ``HistoryBuffer``
objects, numpy arrays, dtypes and scalars exactly as users get them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn
from torch.utils.data import Dataset

from sea_kd.compat import (get_checkpoint_safe_globals,
                           register_checkpoint_safe_globals)

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_PATH = REPO_ROOT / 'sea_kd' / 'compat' / 'checkpoint_safe_globals.py'


def _torch_at_least(major: int, minor: int) -> bool:
    """Whether the installed torch is at least ``major.minor``."""
    match = re.match(r'(\d+)\.(\d+)', torch.__version__)
    assert match is not None
    return (int(match.group(1)), int(match.group(2))) >= (major, minor)


HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'add_safe_globals')
WEIGHTS_ONLY_DEFAULT = _torch_at_least(2, 6)

needs_safe_globals = pytest.mark.skipif(
    not HAS_SAFE_GLOBALS, reason='torch < 2.4 has no add_safe_globals')
needs_weights_only_default = pytest.mark.skipif(
    not WEIGHTS_ONLY_DEFAULT,
    reason='torch < 2.6 does not load with weights_only=True by default')


class ToyModel(BaseModel):
    """Linear regression on 2 features, with mmengine's model interface."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self,
                inputs: torch.Tensor,
                labels: torch.Tensor = None,
                mode: str = 'tensor'):
        """Return the loss dict in ``'loss'`` mode, else the predictions."""
        if isinstance(inputs, list):
            inputs = torch.stack(inputs)
        if isinstance(labels, list):
            labels = torch.stack(labels)
        outputs = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((outputs - labels)**2).mean())
        return outputs


class ToyDataset(Dataset):
    """Eight samples of ``y = x0 + x1`` with integer features."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        inputs = torch.tensor([float(index), float(index % 3)])
        return dict(inputs=inputs, labels=inputs.sum().reshape(1))


def _build_runner(work_dir: Path, max_iters: int, **kwargs) -> Runner:
    """Build a CPU Runner for the toy model that checkpoints every 2 iters."""
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        experiment_name=f'toy_{work_dir.name}',
        **kwargs)


@pytest.fixture(scope='module')
def checkpoint_path(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Train the toy model for 2 iterations and return its checkpoint."""
    work_dir = tmp_path_factory.mktemp('ckpt_work')
    runner = _build_runner(work_dir, max_iters=2)
    runner.train()
    path = work_dir / 'iter_2.pth'
    assert path.is_file()
    yield path


def test_checkpoint_has_the_problematic_content(checkpoint_path: Path) -> None:
    """The Runner's checkpoint really holds HistoryBuffers and numpy data."""
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    message_hub = checkpoint['message_hub']
    buffers = message_hub['log_scalars']
    assert buffers and all(
        isinstance(buffer, HistoryBuffer) for buffer in buffers.values())
    numpy_types = {
        type(value).__module__.split('.')[0]
        for value in message_hub['runtime_info'].values()
    }
    assert 'numpy' in numpy_types  # e.g. the eta, a numpy.float64


@needs_safe_globals
def test_fresh_process_fails_before_and_loads_after_registration(
        checkpoint_path: Path) -> None:
    """In a clean interpreter: weights-only load fails, then works."""
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        import torch

        result = {{}}
        try:
            torch.load({str(checkpoint_path)!r}, weights_only=True)
            result['before'] = 'loaded'
        except Exception as error:
            result['before'] = type(error).__name__ + ': ' + str(error)

        # Import the module from its file, not through the sea_kd package,
        # whose __init__ registers the globals itself.
        spec = importlib.util.spec_from_file_location(
            'checkpoint_safe_globals', {str(MODULE_PATH)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.register_checkpoint_safe_globals()
        module.register_checkpoint_safe_globals()  # idempotent

        checkpoint = torch.load({str(checkpoint_path)!r}, weights_only=True)
        hub = checkpoint['message_hub']
        loss = hub['log_scalars']['train/loss']
        result['after'] = dict(
            buffer_type=type(loss).__name__,
            loss_count=len(loss.data[0]),
            loss_mean=float(loss.mean()),
            eta_type=type(hub['runtime_info']['eta']).__name__,
            iter=checkpoint['meta']['iter'],
            state_keys=sorted(checkpoint['state_dict']))
        print(json.dumps(result))
        """)
    completed = subprocess.run([sys.executable, '-c', script],
                               capture_output=True,
                               text=True,
                               timeout=120,
                               cwd=str(checkpoint_path.parent))
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert 'Unsupported global' in result['before'], result['before']
    after = result['after']
    assert after['buffer_type'] == 'HistoryBuffer'
    assert after['loss_count'] == 2
    assert after['eta_type'] == 'float64'
    assert after['iter'] == 2
    assert after['state_keys'] == ['linear.bias', 'linear.weight']


@needs_safe_globals
def test_registration_is_idempotent() -> None:
    """Repeated calls do not grow torch's list of safe globals."""
    register_checkpoint_safe_globals()
    before = list(torch.serialization.get_safe_globals())
    register_checkpoint_safe_globals()
    after = list(torch.serialization.get_safe_globals())
    assert len(after) == len(before)
    for entry in get_checkpoint_safe_globals():
        assert entry in after


def test_safe_globals_cover_the_needed_symbols() -> None:
    """The registered names include what mmengine checkpoints reference."""
    names = set()
    for entry in get_checkpoint_safe_globals():
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    assert 'builtins.getattr' in names
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert {'numpy.ndarray', 'numpy.dtype'} <= names
    assert any(name.endswith('multiarray._reconstruct') for name in names)
    assert any(name.endswith('multiarray.scalar') for name in names)
    import numpy as np
    float64_dtype_cls = type(np.dtype('float64'))
    assert f'{float64_dtype_cls.__module__}.' \
        f'{float64_dtype_cls.__qualname__}' in names


@needs_weights_only_default
def test_load_checkpoint_under_default_weights_only(
        checkpoint_path: Path) -> None:
    """``mmengine.runner.load_checkpoint`` (used by ``load_from``) works."""
    register_checkpoint_safe_globals()
    model = ToyModel()
    with torch.no_grad():
        model.linear.weight.zero_()
    checkpoint = load_checkpoint(model, str(checkpoint_path),
                                 map_location='cpu')
    assert isinstance(checkpoint['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    torch.testing.assert_close(model.linear.weight,
                               checkpoint['state_dict']['linear.weight'])


@needs_weights_only_default
def test_runner_resume_under_default_weights_only(checkpoint_path: Path,
                                                  tmp_path: Path) -> None:
    """``Runner`` resumes from the checkpoint and continues training."""
    register_checkpoint_safe_globals()
    runner = _build_runner(
        tmp_path / 'resume', max_iters=3, load_from=str(checkpoint_path),
        resume=True)
    runner.train()
    assert runner.iter == 3
    loss_buffer = MessageHub.get_current_instance().get_scalar('train/loss')
    # two values restored from the checkpoint plus the new iteration
    assert len(loss_buffer.data[0]) == 3


@needs_safe_globals
def test_checkpoint_written_by_numpy_1_loads(tmp_path: Path) -> None:
    """Pickles naming ``numpy.core.multiarray`` (numpy 1.x) also load.

    numpy 2 writes ``numpy._core.multiarray``; the file is rewritten with the
    numpy 1.x module name to check that both spellings are registered.
    """
    import numpy as np
    if not WEIGHTS_ONLY_DEFAULT:
        pytest.skip('registering alias names needs torch >= 2.6')
    register_checkpoint_safe_globals()
    payload = dict(
        array=np.arange(3, dtype=np.int64),
        scalar=np.float64(1.5),
        buffer=HistoryBuffer([1.0, 2.0], [1, 1]))
    path = tmp_path / 'legacy.pth'
    torch.save(payload, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    legacy = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'numpy.core.multiarray' in legacy
    path.write_bytes(legacy)

    loaded = torch.load(path, weights_only=True)
    np.testing.assert_array_equal(loaded['array'], payload['array'])
    assert loaded['scalar'] == 1.5
    assert loaded['buffer'].mean() == 1.5


@needs_weights_only_default
def test_getattr_stand_in_resolves_history_buffer_methods_only() -> None:
    """The stand-in resolves what mmengine pickles and nothing else."""
    import builtins
    import pickle

    from sea_kd.compat.checkpoint_safe_globals import checkpoint_getattr
    for name in ('min', 'max', 'current', 'mean'):
        assert checkpoint_getattr(HistoryBuffer, name) is getattr(
            HistoryBuffer, name)
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                      (builtins.getattr, '__self__'), (builtins, 'exec'),
                      (HistoryBuffer([1.0], [1]), 'mean'), (HistoryBuffer, 1)):
        with pytest.raises(pickle.UnpicklingError, match='refused'):
            checkpoint_getattr(obj, name)
    registered = torch.serialization.get_safe_globals()
    assert builtins.getattr not in registered
    assert not any(
        isinstance(e, tuple) and e[0] is builtins.getattr for e in registered)
