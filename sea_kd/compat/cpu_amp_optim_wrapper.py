"""Mixed-precision training on CPU-only machines (bfloat16 autocast).

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU (NPU, MLU,
MUSA). :class:`CPUAmpOptimWrapper` is the same wrapper for CPUs: the
forward runs under ``torch.autocast('cpu', dtype=torch.bfloat16)`` (the only
dtype mmengine's CPU autocast accepts), and the loss goes through
``torch.amp.GradScaler('cpu')``, so configs, checkpoints (``loss_scaler``
state) and gradient clipping behave as with ``AmpOptimWrapper``. bfloat16
has float32's exponent range, so loss scaling is optional
(``loss_scale=None`` turns it off). mmcv's CPU NMS and RoIAlign, which have
no bfloat16 kernel, run in float32 (:func:`mmcv_ops_in_fp32`), so two-stage
detectors train too.

``tools/train.py --amp`` picks it on CPU-only machines, and turns a
config's ``AmpOptimWrapper`` into it there (:func:`use_cpu_amp`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Optional, Union

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner.amp import autocast
from torch import nn

from .cpu_autocast import mmcv_ops_in_fp32

__all__ = ['CPUAmpOptimWrapper', 'use_cpu_amp']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` for models on the CPU: bfloat16 autocast.

    Args:
        loss_scale: ``'dynamic'`` (default), a float (static scale), a dict
            of ``torch.amp.GradScaler`` arguments, or ``None`` for no loss
            scaling.
        dtype: ``'bfloat16'`` (default; ``None`` means the same) or
            ``torch.bfloat16``. CPU autocast does not run in float16.
        **kwargs: Arguments of :class:`mmengine.optim.OptimWrapper`
            (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict, None] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = 'bfloat16',
                 **kwargs) -> None:
        if kwargs.pop('use_fsdp', False):
            raise ValueError('CPUAmpOptimWrapper does not support FSDP '
                             '(use_fsdp=True); FSDP needs GPUs.')
        if dtype is None:
            dtype = torch.bfloat16
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype != torch.bfloat16:
            raise ValueError(
                f'CPU mixed precision runs in bfloat16, got dtype={dtype}. '
                "Set optim_wrapper.dtype='bfloat16' (or leave it out).")
        grad_scaler = getattr(torch.amp, 'GradScaler', None)
        if grad_scaler is None:  # pragma: no cover - torch < 2.3
            raise RuntimeError(
                'CPU loss scaling needs torch.amp.GradScaler (torch >= 2.3);'
                ' set optim_wrapper.loss_scale=None (bfloat16 does not need '
                'it) or upgrade torch.')
        # AmpOptimWrapper.__init__ refuses CPU-only machines; the state it
        # sets (loss_scaler, _scale_update_param, cast_dtype) is set here.
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        if loss_scale is None:
            self.loss_scaler = grad_scaler('cpu', enabled=False)
        elif loss_scale == 'dynamic':
            self.loss_scaler = grad_scaler('cpu')
        elif isinstance(loss_scale, (int, float)):
            self._scale_update_param = float(loss_scale)
            self.loss_scaler = grad_scaler('cpu', init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = grad_scaler('cpu', **loss_scale)
        else:
            raise TypeError('loss_scale must be "dynamic", a float, a dict '
                            f'or None, got {loss_scale!r}.')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context plus CPU bfloat16 autocast, with
        mmcv's NMS and RoIAlign in float32."""
        with OptimWrapper.optim_context(self, model), \
                mmcv_ops_in_fp32(model), \
                autocast(device_type='cpu', dtype=self.cast_dtype):
            yield


def use_cpu_amp(optim_wrapper: dict) -> Optional[str]:
    """Turn an ``AmpOptimWrapper`` config into a :class:`CPUAmpOptimWrapper`
    one, in place, for a CPU-only machine.

    Its ``dtype`` becomes ``'bfloat16'``, the only dtype of CPU autocast
    (under CUDA, ``dtype=None`` means float16). Other wrapper types are left
    alone.

    Returns:
        str: A line saying what changed, or ``None`` when nothing did.
    """
    if optim_wrapper.get('type') not in ('AmpOptimWrapper',
                                         'mmengine.AmpOptimWrapper'):
        return None
    optim_wrapper['type'] = 'CPUAmpOptimWrapper'
    old = optim_wrapper.get('dtype')
    optim_wrapper['dtype'] = 'bfloat16'
    return ('No GPU: mixed precision runs on the CPU in bfloat16 '
            f'(CPUAmpOptimWrapper; dtype was {old!r}).')
