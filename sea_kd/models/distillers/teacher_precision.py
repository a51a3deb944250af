"""A lighter teacher: its backbone and neck stored and run in half precision.

The frozen teacher's backbone and neck hold most of its weights and do most
of its work; in bfloat16 or float16 they take half the memory. Their output
is cast back to float32 at the neck's exit, so the teacher's heads (dense
head, R-CNN branch) and every method reading the neck or the heads see
float32 as before; only the features' precision changes. The trunk runs
with autocast off (its own dtype, whatever the step's mixed precision).
Taps inside the trunk (``ModuleTaps`` on ``backbone.*`` or a submodule of
the neck) record the trunk's dtype; methods upcast what they read
(:func:`~sea_kd.models.utils.precision.at_least_fp32`).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch import nn

from ...utils.checked_choice import checked_choice

#: ``teacher_dtype`` values and their torch dtypes.
TEACHER_DTYPES = {
    'float32': torch.float32,
    'bfloat16': torch.bfloat16,
    'float16': torch.float16,
}


def teacher_dtype_of(name: str) -> torch.dtype:
    """The torch dtype of a ``teacher_dtype`` name, with a clear error.

    Raises:
        TypeError: ``name`` is not a string (e.g. a list of names).
        ValueError: ``name`` is not one of :data:`TEACHER_DTYPES`.
    """
    if not isinstance(name, str):
        raise TypeError(
            f'teacher_dtype is one dtype name, a string among '
            f'{sorted(TEACHER_DTYPES)}, got the {type(name).__name__} '
            f"{name!r}. Write e.g. teacher_dtype='bfloat16'.")
    checked_choice('teacher_dtype', name, sorted(TEACHER_DTYPES))
    return TEACHER_DTYPES[name]


def _to_float32(output: Any) -> Any:
    if torch.is_tensor(output):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, (tuple, list)):
        return type(output)(_to_float32(o) for o in output)
    return output


def _without_autocast(forward: Callable) -> Callable:
    """``forward`` run with autocast off, on the device of its first
    tensor argument (a bfloat16 autocast would otherwise feed a float16
    trunk mixed dtypes)."""

    @functools.wraps(forward)
    def run(*args, **kwargs):
        tensor = next((a for a in args if torch.is_tensor(a)), None)
        device_type = tensor.device.type if tensor is not None else 'cpu'
        with torch.autocast(device_type=device_type, enabled=False):
            return forward(*args, **kwargs)

    return run


def lower_teacher_precision(teacher: nn.Module, name: str) -> None:
    """Store the teacher's backbone (and neck) in ``name``'s dtype.

    A forward pre-hook casts the backbone's input to that dtype and a
    forward hook casts the trunk's output (the neck's, or the backbone's
    when there is no neck) back to float32; the trunk's forward runs with
    autocast off. Every path through the teacher (the distiller's step,
    ``predict_teacher``) goes through them. The heads stay in float32.

    Args:
        teacher: The frozen teacher detector (weights already loaded).
        name: ``'float32'`` (nothing changes), ``'bfloat16'`` or
            ``'float16'``.
    """
    dtype = teacher_dtype_of(name)
    if dtype == torch.float32:
        return
    backbone = getattr(teacher, 'backbone', None)
    if not isinstance(backbone, nn.Module):
        raise TypeError(f'teacher_dtype={name!r} needs a teacher with a '
                        f'`backbone`; a {type(teacher).__name__} has none. '
                        "Use teacher_dtype='float32'.")
    neck = getattr(teacher, 'neck', None)
    trunk = [backbone] + ([neck] if isinstance(neck, nn.Module) else [])
    for part in trunk:
        part.to(dtype)
        part.forward = _without_autocast(part.forward)

    def cast_input(module, args):
        return (args[0].to(dtype), ) + tuple(args[1:])

    backbone.register_forward_pre_hook(cast_input)
    trunk[-1].register_forward_hook(
        lambda module, args, output: _to_float32(output))
