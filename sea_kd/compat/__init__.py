"""Compatibility fixes for running sea_kd on newer torch and on CPU-only hosts.

* :func:`register_checkpoint_safe_globals` lets mmengine checkpoints load
  under ``torch.load(weights_only=True)``, the default since torch 2.6.
* :func:`setup_cpu_distributed` and :func:`cleanup_distributed` make
  ``torchrun`` + ``launcher='pytorch'`` training work without GPUs (gloo
  backend, DDP without ``device_ids``), through
  :class:`CPUCompatibleDistributedDataParallel`.
"""

from .checkpoint_safe_globals import (get_checkpoint_safe_globals,
                                      register_checkpoint_safe_globals)
from .cpu_distributed import (CPUCompatibleDistributedDataParallel,
                              cleanup_distributed, is_cpu_only,
                              setup_cpu_distributed)

__all__ = [
    'CPUCompatibleDistributedDataParallel',
    'cleanup_distributed',
    'get_checkpoint_safe_globals',
    'is_cpu_only',
    'register_checkpoint_safe_globals',
    'setup_cpu_distributed',
]
