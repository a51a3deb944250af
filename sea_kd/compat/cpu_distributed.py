"""Distributed (multi-process) training on CPU-only machines with mmengine.

mmengine 0.10.x assumes an accelerator when it runs distributed:

* ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device``
  unconditionally, which fails on a CPU build of torch with
  ``module 'torch._C' has no attribute '_cuda_setDevice'``;
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
  :class:`~mmengine.model.MMDistributedDataParallel`, which
  :class:`torch.nn.parallel.DistributedDataParallel` rejects for CPU modules;
* a process that exits with the gloo process group still alive may abort with
  ``terminate called without an active exception``.

:func:`setup_cpu_distributed` works around all three before the Runner is
built: it initialises a gloo process group itself (``Runner.setup_env`` skips
its own initialisation when one exists) and points ``cfg.model_wrapper_cfg``
at :class:`CPUCompatibleDistributedDataParallel`. :func:`cleanup_distributed`
tears the group down at exit. Typical use in a ``tools/train.py``::

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    finally:
        cleanup_distributed()

With an accelerator available, :func:`setup_cpu_distributed` does nothing and
mmengine's usual path is taken.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from typing import Any, MutableMapping, Optional

import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

__all__ = [
    'CPUCompatibleDistributedDataParallel',
    'cleanup_distributed',
    'is_cpu_only',
    'setup_cpu_distributed',
]

_WRAPPER_NAME = 'CPUCompatibleDistributedDataParallel'
# Wrapper types that ours may replace: mmengine's default DDP wrapper.
_REPLACEABLE_WRAPPERS = (None, 'MMDistributedDataParallel',
                         MMDistributedDataParallel)
_TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                       'MASTER_PORT')


def _module_on_cpu(module: nn.Module) -> bool:
    """Whether all parameters and buffers of ``module`` are on the CPU.

    Args:
        module: The module to inspect.

    Returns:
        True if every parameter and buffer is a CPU tensor (also when the
        module has none).
    """
    tensors = list(module.parameters()) + list(module.buffers())
    return all(tensor.device.type == 'cpu' for tensor in tensors)


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDistributedDataParallel(MMDistributedDataParallel):
    """An ``MMDistributedDataParallel`` that also accepts CPU modules.

    ``Runner.wrap_model`` always passes ``device_ids=[LOCAL_RANK]`` to
    subclasses of :class:`~torch.nn.parallel.DistributedDataParallel`, but
    DDP requires ``device_ids`` and ``output_device`` to be ``None`` for CPU
    modules. This wrapper drops both when the wrapped module lives on the
    CPU; for modules on an accelerator it is identical to its parent.

    Args:
        module: The model to wrap.
        detect_anomalous_params: See
            :class:`~mmengine.model.MMDistributedDataParallel`.
        **kwargs: Passed on to
            :class:`~torch.nn.parallel.DistributedDataParallel`.
    """

    def __init__(self,
                 module: nn.Module,
                 detect_anomalous_params: bool = False,
                 **kwargs: Any) -> None:
        if _module_on_cpu(module):
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        super().__init__(
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)


def is_cpu_only() -> bool:
    """Whether mmengine will place models on the CPU.

    Uses mmengine's own device detection, so machines with CUDA, NPU, MLU,
    MUSA or MPS devices (which mmengine's distributed path handles, or is
    not meant to run on the CPU) are not treated as CPU-only.

    Returns:
        True if mmengine's device is ``'cpu'``.
    """
    if torch.cuda.is_available():
        return False
    try:
        from mmengine.device import get_device
    except ImportError:  # pragma: no cover - mmengine always has it
        return True
    return get_device() == 'cpu'


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a Config, ConfigDict or dict.

    Args:
        cfg: The configuration.
        key: Top-level key.
        default: Value returned if the key is absent or ``None``.

    Returns:
        The value, or ``default``.
    """
    value = cfg.get(key, None)
    return default if value is None else value


def _dist_timeout(cfg: Any) -> Optional[datetime.timedelta]:
    """Read ``env_cfg.dist_cfg.timeout`` (seconds) from ``cfg``.

    Args:
        cfg: The configuration.

    Returns:
        The timeout, or ``None`` if not configured.
    """
    env_cfg = _get(cfg, 'env_cfg', {})
    dist_cfg = env_cfg.get('dist_cfg', None) or {}
    timeout = dist_cfg.get('timeout', None)
    if timeout is None:
        return None
    if isinstance(timeout, datetime.timedelta):
        return timeout
    return datetime.timedelta(seconds=float(timeout))


def _init_gloo_from_env(timeout: Optional[datetime.timedelta]) -> None:
    """Initialise the default process group with gloo from torchrun's env.

    Args:
        timeout: Timeout for collective operations, or ``None`` for torch's
            default.

    Raises:
        RuntimeError: If a torchrun environment variable is missing.
    """
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(
            'launcher="pytorch" needs the environment that torchrun '
            '(python -m torch.distributed.run) sets; missing: ' +
            ', '.join(missing))
    kwargs: dict = dict(
        backend='gloo',
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']))
    if timeout is not None:
        kwargs['timeout'] = timeout
    torch_dist.init_process_group(**kwargs)


def _env_from_slurm(env: MutableMapping[str, str]) -> None:
    """Set torchrun's variables from Slurm's, as mmengine's Slurm path does.

    ``RANK`` = ``SLURM_PROCID``, ``WORLD_SIZE`` = ``SLURM_NTASKS``,
    ``LOCAL_RANK`` = ``SLURM_LOCALID`` (0 when unset), ``MASTER_ADDR`` the
    first host of ``SLURM_NODELIST`` (``scontrol show hostname``) unless
    set, ``MASTER_PORT`` 29500 unless set.

    Raises:
        RuntimeError: If ``SLURM_PROCID``, ``SLURM_NTASKS`` or
            ``SLURM_NODELIST`` is missing (not started by ``srun``), or
            ``scontrol`` is needed and not on PATH.
    """
    missing = [name for name in ('SLURM_PROCID', 'SLURM_NTASKS',
                                 'SLURM_NODELIST') if name not in env]
    if missing:
        raise RuntimeError(
            'launcher="slurm" needs the environment srun sets (use '
            'tools/slurm_train.sh); missing: ' + ', '.join(missing))
    if 'MASTER_ADDR' not in env:
        if shutil.which('scontrol') is None:
            raise RuntimeError(
                'scontrol is not on PATH, so the master node of this Slurm '
                'job cannot be found: add Slurm\'s bin directory to PATH, or '
                'set MASTER_ADDR to the first host of the job.')
        hosts = subprocess.run(
            ['scontrol', 'show', 'hostname', env['SLURM_NODELIST']],
            check=True, stdout=subprocess.PIPE, text=True).stdout.split()
        env['MASTER_ADDR'] = hosts[0]
    env.setdefault('MASTER_PORT', '29500')
    env['RANK'] = env['SLURM_PROCID']
    env['WORLD_SIZE'] = env['SLURM_NTASKS']
    env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')


def _set_model_wrapper_cfg(cfg: Any) -> None:
    """Point ``cfg.model_wrapper_cfg`` at the CPU-compatible DDP wrapper.

    Keeps every option of an existing ``MMDistributedDataParallel`` wrapper
    config. Without one, mirrors what ``Runner.wrap_model`` does by default
    (``broadcast_buffers=False`` and the top-level
    ``find_unused_parameters``). Custom wrappers are left untouched.

    Args:
        cfg: The configuration, modified in place.
    """
    current = _get(cfg, 'model_wrapper_cfg', None)
    if current is None:
        cfg['model_wrapper_cfg'] = dict(
            type=_WRAPPER_NAME,
            broadcast_buffers=False,
            find_unused_parameters=bool(
                _get(cfg, 'find_unused_parameters', False)))
        return
    wrapper_type = current.get('type', None)
    if wrapper_type in (_WRAPPER_NAME, CPUCompatibleDistributedDataParallel):
        return
    if wrapper_type in _REPLACEABLE_WRAPPERS:
        new_cfg = dict(current)
        new_cfg['type'] = _WRAPPER_NAME
        if 'find_unused_parameters' not in new_cfg and _get(
                cfg, 'find_unused_parameters', None) is not None:
            new_cfg['find_unused_parameters'] = bool(
                cfg['find_unused_parameters'])
        cfg['model_wrapper_cfg'] = new_cfg
        return
    print(
        f'sea_kd: model_wrapper_cfg type {wrapper_type!r} is kept as is; it '
        'must accept CPU modules for distributed training on CPU.',
        file=sys.stderr)


def _set_gloo_backend(cfg: Any) -> None:
    """Set ``cfg.env_cfg.dist_cfg.backend = 'gloo'``, creating keys as needed.

    Args:
        cfg: The configuration, modified in place.
    """
    env_cfg = _get(cfg, 'env_cfg', None)
    if env_cfg is None:
        cfg['env_cfg'] = dict(dist_cfg=dict(backend='gloo'))
        return
    dist_cfg = env_cfg.get('dist_cfg', None)
    if dist_cfg is None:
        env_cfg['dist_cfg'] = dict(backend='gloo')
    else:
        dist_cfg['backend'] = 'gloo'


def setup_cpu_distributed(cfg: MutableMapping[str, Any],
                          launcher: Optional[str] = None) -> bool:
    """Prepare a config and the process group for distributed CPU training.

    Call it before ``Runner.from_cfg(cfg)``. It acts only when the launcher
    is not ``'none'`` and mmengine would run on the CPU; then it

    1. initialises ``torch.distributed`` with the gloo backend from the
       torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
       ``MASTER_ADDR``, ``MASTER_PORT``; ``init_method='env://'``) unless a
       process group already exists, so that mmengine does not call
       ``torch.cuda.set_device``;
    2. sets ``cfg.model_wrapper_cfg`` to
       :class:`CPUCompatibleDistributedDataParallel`, keeping the options of
       an existing ``MMDistributedDataParallel`` wrapper config and the
       top-level ``find_unused_parameters``;
    3. sets ``cfg.env_cfg.dist_cfg.backend = 'gloo'``.

    Calling it again is harmless.

    Args:
        cfg: The mmengine ``Config`` (or a dict-like config), modified in
            place.
        launcher: Launcher to use instead of ``cfg.launcher`` (which is
            then set to it). ``None`` reads ``cfg.launcher``, defaulting to
            ``'none'``.

    Returns:
        True if it changed anything (CPU-only machine and a distributed
        launcher), False otherwise.

    With ``launcher='slurm'`` the torchrun variables are first set from
    Slurm's, as mmengine's own Slurm path does (:func:`_env_from_slurm`).

    Raises:
        NotImplementedError: For launchers other than ``'pytorch'`` and
            ``'slurm'`` on a CPU-only machine (mmengine's ``mpi`` path also
            calls ``torch.cuda.set_device``).
        RuntimeError: If torchrun's (or Slurm's) environment variables are
            missing.
    """
    if launcher is None:
        launcher = _get(cfg, 'launcher', 'none')
    else:
        cfg['launcher'] = launcher
    if launcher == 'none' or not is_cpu_only():
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise NotImplementedError(
            f'Distributed training on CPU supports launcher="pytorch" '
            f'(torchrun) and "slurm", got launcher={launcher!r}.')
    if launcher == 'slurm':
        _env_from_slurm(os.environ)

    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        _init_gloo_from_env(_dist_timeout(cfg))
    _set_model_wrapper_cfg(cfg)
    _set_gloo_backend(cfg)
    return True


def cleanup_distributed(barrier: bool = True,
                        barrier_timeout_s: float = 60.0) -> None:
    """Destroy the default process group if one is initialised.

    Meant for a ``finally`` clause at the end of a training or test script.
    When ``barrier`` is set, the ranks first wait for each other so that no
    rank tears down while another still communicates; the barrier is skipped
    while an exception propagates (the other ranks may be blocked in a
    different collective), and with gloo it is a ``monitored_barrier`` that
    gives up after ``barrier_timeout_s`` instead of hanging.

    Args:
        barrier: Whether to synchronise the ranks before destroying.
        barrier_timeout_s: Timeout of the gloo barrier in seconds.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    try:
        if barrier and sys.exc_info()[0] is None:
            if torch_dist.get_backend() == 'gloo':
                torch_dist.monitored_barrier(
                    timeout=datetime.timedelta(seconds=barrier_timeout_s))
            else:
                torch_dist.barrier()
    except Exception as error:  # do not mask the real outcome of the run
        print(f'sea_kd: barrier before destroying the process group '
              f'failed: {error}', file=sys.stderr)
    finally:
        torch_dist.destroy_process_group()
