"""float32 islands for mmcv ops that have no bfloat16 CPU kernel.

Under CPU autocast (bfloat16) the features and head outputs of mmdet
detectors are bfloat16, but mmcv 2.x's CPU ``nms`` and ``RoIAlign`` accept
float32 only ("expected scalar type Float but found BFloat16",
"ROIAlign_forward not implemented for 'BFloat16'"). Two-stage detectors hit
both in their training step: the RPN's proposals go through NMS and the
R-CNN's RoI features through RoIAlign.

:func:`mmcv_ops_in_fp32` shadows, for the span of a block and per module
instance, the methods that reach those ops: ``forward`` of every RoI
extractor and ``predict_by_feat`` of every dense head. While CPU autocast
is on, they run with autocast off on float32 copies of their floating
inputs (gradients flow back through the casts); otherwise they call the
original method unchanged.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Tuple

import torch
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from torch import nn

__all__ = ['cpu_autocast_enabled', 'mmcv_ops_in_fp32']

#: (module class, method) pairs whose calls reach mmcv's CPU NMS/RoIAlign.
FP32_METHODS: Tuple[Tuple[type, str], ...] = (
    (BaseRoIExtractor, 'forward'),
    (BaseDenseHead, 'predict_by_feat'),
)


def cpu_autocast_enabled() -> bool:
    """Whether CPU autocast is on in the current thread."""
    try:
        return torch.is_autocast_enabled('cpu')
    except TypeError:  # pragma: no cover - torch < 2.4
        return torch.is_autocast_cpu_enabled()


def _upcast(value: Any) -> Any:
    """float16/bfloat16 tensors in ``value`` (also inside plain lists,
    tuples and dicts) as float32; everything else unchanged (config dicts
    and other containers keep their type)."""
    if torch.is_tensor(value):
        if value.dtype in (torch.float16, torch.bfloat16):
            return value.float()
        return value
    if type(value) in (list, tuple):
        return type(value)(_upcast(v) for v in value)
    if type(value) is dict:
        return {k: _upcast(v) for k, v in value.items()}
    return value


def _in_fp32(method: Callable) -> Callable:

    @functools.wraps(method)
    def call(*args, **kwargs):
        if not cpu_autocast_enabled():
            return method(*args, **kwargs)
        with torch.autocast('cpu', enabled=False):
            return method(*_upcast(args), **_upcast(kwargs))

    return call


@contextmanager
def mmcv_ops_in_fp32(model: nn.Module) -> Iterator[int]:
    """Run the methods of :data:`FP32_METHODS` of ``model``'s modules in
    float32 while CPU autocast is on, for the span of the block.

    Modules whose method is already shadowed per instance are left alone.

    Yields:
        int: The number of methods shadowed.
    """
    shadowed = []
    try:
        for module in model.modules():
            for cls, name in FP32_METHODS:
                if isinstance(module, cls) and name not in vars(module):
                    vars(module)[name] = _in_fp32(getattr(module, name))
                    shadowed.append((module, name))
        yield len(shadowed)
    finally:
        for module, name in shadowed:
            vars(module).pop(name, None)
