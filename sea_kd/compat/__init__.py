"""Compatibility fixes for running sea_kd on newer torch and on CPU-only hosts.

* :func:`register_checkpoint_safe_globals` lets mmengine checkpoints load
  under ``torch.load(weights_only=True)``, the default since torch 2.6,
  without letting a checkpoint run code.
* :func:`register_safe_checkpoint_loaders` makes mmengine read every
  checkpoint, local or downloaded, weights-only, with errors that name the
  file.
* :func:`setup_cpu_distributed` and :func:`cleanup_distributed` make
  ``torchrun`` + ``launcher='pytorch'`` training work without GPUs (gloo
  backend, DDP without ``device_ids``), through
  :class:`CPUCompatibleDistributedDataParallel`.
* :class:`CPUAmpOptimWrapper` is mmengine's ``AmpOptimWrapper`` for
  CPU-only machines (bfloat16 autocast); :func:`use_cpu_amp` switches an
  ``AmpOptimWrapper`` config to it; :func:`mmcv_ops_in_fp32` runs mmcv's
  NMS and RoIAlign (no bfloat16 CPU kernels) in float32 under CPU autocast.
"""

from .checkpoint_loaders import (CheckpointFileError, UnsafeCheckpointError,
                                 register_safe_checkpoint_loaders)
from .checkpoint_safe_globals import (get_checkpoint_safe_globals,
                                      register_checkpoint_safe_globals)
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper, use_cpu_amp
from .cpu_autocast import cpu_autocast_enabled, mmcv_ops_in_fp32
from .cpu_distributed import (CPUCompatibleDistributedDataParallel,
                              cleanup_distributed, is_cpu_only,
                              setup_cpu_distributed)

__all__ = [
    'CheckpointFileError',
    'UnsafeCheckpointError',
    'register_safe_checkpoint_loaders',
    'CPUAmpOptimWrapper',
    'CPUCompatibleDistributedDataParallel',
    'cleanup_distributed',
    'cpu_autocast_enabled',
    'get_checkpoint_safe_globals',
    'is_cpu_only',
    'mmcv_ops_in_fp32',
    'register_checkpoint_safe_globals',
    'setup_cpu_distributed',
    'use_cpu_amp',
]
