"""Tests for :mod:`sea_kd.compat.cpu_distributed`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from sea_kd.compat import (CPUCompatibleDistributedDataParallel,
                           cleanup_distributed, cpu_distributed, is_cpu_only,
                           setup_cpu_distributed)

REPO_ROOT = Path(__file__).resolve().parents[2]

cpu_only = pytest.mark.skipif(
    not is_cpu_only(), reason='the CPU path is only taken without a GPU')
needs_gloo = pytest.mark.skipif(
    not (torch_dist.is_available() and torch_dist.is_gloo_available()),
    reason='torch.distributed with gloo is not available')


def _free_port() -> int:
    """Return a TCP port on localhost that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def single_process_group(
        monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A world-size-1 gloo process group, with torchrun-like variables."""
    assert not torch_dist.is_initialized()
    port = _free_port()
    for name, value in dict(
            RANK='0',
            LOCAL_RANK='0',
            WORLD_SIZE='1',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(name, value)
    torch_dist.init_process_group(
        backend='gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=0,
        world_size=1)
    try:
        yield
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


@needs_gloo
def test_parent_wrapper_rejects_cpu_module_with_device_ids(
        single_process_group: None) -> None:
    """The problem being fixed: mmengine's wrapper fails on CPU modules."""
    with pytest.raises(ValueError, match='device_ids'):
        MMDistributedDataParallel(module=nn.Linear(2, 1), device_ids=[0])


@needs_gloo
def test_wrapper_drops_device_ids_for_cpu_module(
        single_process_group: None) -> None:
    """Built like ``Runner.wrap_model`` does it, the wrapper works on CPU."""
    module = nn.Linear(2, 1)
    wrapper = MODEL_WRAPPERS.build(
        dict(type='CPUCompatibleDistributedDataParallel',
             broadcast_buffers=False),
        default_args=dict(module=module, device_ids=[0]))
    assert isinstance(wrapper, CPUCompatibleDistributedDataParallel)
    assert isinstance(wrapper, MMDistributedDataParallel)
    assert wrapper.device_ids is None
    assert wrapper.module is module

    direct = CPUCompatibleDistributedDataParallel(
        module=nn.Linear(2, 1), device_ids=[0], output_device=0)
    assert direct.device_ids is None and direct.output_device is None

    loss = wrapper(torch.ones(4, 2)).sum()
    loss.backward()
    assert module.weight.grad is not None


@cpu_only
@needs_gloo
def test_setup_with_existing_group_only_updates_cfg(
        single_process_group: None) -> None:
    """An existing group is reused; the wrapper cfg keeps user options."""
    cfg = Config(
        dict(
            launcher='pytorch',
            find_unused_parameters=True,
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    group = torch_dist.group.WORLD
    assert setup_cpu_distributed(cfg) is True
    assert torch_dist.group.WORLD is group
    assert cfg.model_wrapper_cfg.type == 'CPUCompatibleDistributedDataParallel'
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    assert cfg.model_wrapper_cfg.broadcast_buffers is False
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'

    # Calling again changes nothing.
    assert setup_cpu_distributed(cfg) is True
    assert cfg.model_wrapper_cfg.type == 'CPUCompatibleDistributedDataParallel'

    # Options of an existing MMDistributedDataParallel config are kept.
    cfg = Config(
        dict(
            launcher='none',
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel',
                detect_anomalous_params=True)))
    assert setup_cpu_distributed(cfg, launcher='pytorch') is True
    assert cfg.launcher == 'pytorch'
    assert dict(cfg.model_wrapper_cfg) == dict(
        type='CPUCompatibleDistributedDataParallel',
        detect_anomalous_params=True)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'

    cleanup_distributed()
    assert not torch_dist.is_initialized()


def test_setup_without_launcher_does_nothing() -> None:
    """``launcher='none'`` (or a GPU machine) leaves everything alone."""
    cfg = Config(dict(launcher='none', env_cfg=dict()))
    assert setup_cpu_distributed(cfg) is False
    assert 'model_wrapper_cfg' not in cfg
    assert cfg.env_cfg == dict()
    assert not torch_dist.is_initialized()
    cleanup_distributed()  # no group: a no-op


@cpu_only
def test_setup_rejects_unsupported_launcher() -> None:
    """torchrun's and Slurm's environments are supported on CPU, not MPI."""
    with pytest.raises(NotImplementedError, match='mpi'):
        setup_cpu_distributed(Config(dict(launcher='mpi')))


@cpu_only
def test_slurm_environment_becomes_torchruns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SLURM_* set RANK, WORLD_SIZE, LOCAL_RANK; scontrol names the master
    node; a missing SLURM_* variable gives a clear error."""
    calls = []

    def scontrol(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, stdout='node7\nnode8\n')

    monkeypatch.setattr(cpu_distributed.subprocess, 'run', scontrol)
    monkeypatch.setattr(cpu_distributed.shutil, 'which',
                        lambda name: f'/usr/bin/{name}')
    env = dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_LOCALID='1',
               SLURM_NODELIST='node[7-8]')
    cpu_distributed._env_from_slurm(env)
    assert calls == [['scontrol', 'show', 'hostname', 'node[7-8]']]
    assert {k: env[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK',
                                'MASTER_ADDR', 'MASTER_PORT')} == dict(
        RANK='3', WORLD_SIZE='4', LOCAL_RANK='1', MASTER_ADDR='node7',
        MASTER_PORT='29500')
    kept = dict(env, MASTER_ADDR='10.0.0.1', MASTER_PORT='1234')
    cpu_distributed._env_from_slurm(kept)
    assert kept['MASTER_ADDR'] == '10.0.0.1' and kept['MASTER_PORT'] == '1234'
    assert len(calls) == 1  # no lookup when MASTER_ADDR is given
    with pytest.raises(RuntimeError, match='missing: SLURM_NODELIST'):
        cpu_distributed._env_from_slurm(dict(SLURM_PROCID='0',
                                             SLURM_NTASKS='1'))


@cpu_only
def test_setup_without_torchrun_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing torchrun variable gives a clear error."""
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match='torchrun'):
        setup_cpu_distributed(Config(dict(launcher='pytorch')))
    assert not torch_dist.is_initialized()


TRAIN_SCRIPT = textwrap.dedent('''
    """Two-rank toy training and validation on CPU, set up by sea_kd."""
    import json
    import os
    import sys

    import torch
    import torch.distributed as torch_dist
    from mmengine.config import Config
    from mmengine.model import BaseModel
    from mmengine.evaluator import BaseMetric
    from mmengine.registry import DATASETS, METRICS, MODELS
    from mmengine.runner import Runner
    from torch import nn
    from torch.utils.data import Dataset

    from sea_kd.compat import (CPUCompatibleDistributedDataParallel,
                               cleanup_distributed, setup_cpu_distributed)

    torch.set_num_threads(1)


    @MODELS.register_module()
    class DistToyModel(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            if isinstance(inputs, list):
                inputs = torch.stack(inputs)
            if isinstance(labels, list):
                labels = torch.stack(labels)
            outputs = self.linear(inputs)
            if mode == 'loss':
                return dict(loss=((outputs - labels) ** 2).mean())
            return outputs


    @DATASETS.register_module()
    class DistToyDataset(Dataset):

        def __len__(self):
            return 16

        def __getitem__(self, index):
            inputs = torch.tensor([float(index % 5), float(index % 3)])
            return dict(inputs=inputs, labels=inputs.sum().reshape(1))


    @METRICS.register_module()
    class DistToyMSE(BaseMetric):

        def process(self, data_batch, data_samples):
            labels = torch.stack(data_batch['labels'])
            for output, label in zip(data_samples, labels):
                self.results.append(float((output - label).pow(2).sum()))

        def compute_metrics(self, results):
            return dict(mse=sum(results) / len(results), count=len(results))


    work_dir, out_dir = sys.argv[1], sys.argv[2]
    cfg = Config(dict(
        model=dict(type='DistToyModel'),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=dict(type='DistToyDataset'),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4),
        val_dataloader=dict(
            dataset=dict(type='DistToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0),
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='DistToyMSE'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=4,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False),
        env_cfg=dict(dist_cfg=dict(backend='nccl')),
        randomness=dict(seed=0),
        experiment_name='dist_toy',
    ))
    cfg.launcher = 'pytorch'
    assert setup_cpu_distributed(cfg), 'expected the CPU path'
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
        metrics = runner.val_loop.run()
        rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
        weights = torch.cat([p.detach().flatten()
                             for p in runner.model.parameters()])
        result = dict(
            rank=rank,
            world_size=world_size,
            local_rank=int(os.environ['LOCAL_RANK']),
            iter=runner.iter,
            backend=str(torch_dist.get_backend()),
            wrapper=type(runner.model).__name__,
            wrapper_is_cpu_ddp=isinstance(
                runner.model, CPUCompatibleDistributedDataParallel),
            weights=weights.tolist(),
            val_count=metrics['count'],
            val_mse=metrics['mse'])
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as file:
            json.dump(result, file)
    finally:
        cleanup_distributed()
    assert not torch_dist.is_initialized()
''')


@pytest.mark.slow
@cpu_only
@needs_gloo
def test_two_process_torchrun_training(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=2`` trains the toy model on CPU."""
    script = tmp_path / 'train_toy.py'
    script.write_text(TRAIN_SCRIPT)
    work_dir = tmp_path / 'work'
    out_dir = tmp_path / 'out'
    out_dir.mkdir()

    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in [env.get('PYTHONPATH')] if p])
    env['OMP_NUM_THREADS'] = '1'
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        env.pop(name, None)
    command = [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--nnodes=1', f'--master_port={_free_port()}', str(script),
        str(work_dir),
        str(out_dir)
    ]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=str(tmp_path),
        env=env)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    assert 'terminate called' not in output
    assert '_cuda_setDevice' not in output

    results = [
        json.loads((out_dir / f'rank{rank}.json').read_text())
        for rank in range(2)
    ]
    for rank, result in enumerate(results):
        assert result['rank'] == rank
        assert result['local_rank'] == rank
        assert result['world_size'] == 2
        assert result['iter'] == 4
        assert result['backend'] == 'gloo'
        assert result['wrapper'] == 'CPUCompatibleDistributedDataParallel'
        assert result['wrapper_is_cpu_ddp'] is True
    # DDP averaged the gradients, so both replicas hold the same weights.
    assert results[0]['weights'] == pytest.approx(results[1]['weights'])
    # Validation gathered the 16 samples of both ranks over gloo.
    assert results[0]['val_count'] == results[1]['val_count'] == 16
    assert results[0]['val_mse'] == pytest.approx(results[1]['val_mse'])

    # Rank 0 saved the checkpoint, and its log shows distributed training.
    assert (work_dir / 'iter_4.pth').is_file()
    logs = list(work_dir.glob('*/*.log'))
    assert logs, sorted(str(path) for path in work_dir.rglob('*'))
    log_text = logs[0].read_text()
    assert 'Distributed training: True' in log_text
    assert 'Iter(train) [4/4]' in log_text
    # 16 validation samples split over 2 ranks: 2 batches of 4 per rank.
    assert 'Iter(val) [2/2]' in log_text
