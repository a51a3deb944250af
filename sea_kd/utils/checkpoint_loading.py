"""Strict checkpoint loading with errors that name the file and bad keys."""
from __future__ import annotations

import os.path as osp
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from ..compat.checkpoint_loaders import (CheckpointFileError,
                                         UnsafeCheckpointError)

_SHOWN_KEYS = 5


def read_checkpoint(path: str,
                    role: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read the ``state_dict`` and ``meta`` of an mmengine (or plain torch)
    checkpoint.

    Loading is weights-only (:mod:`sea_kd.compat.checkpoint_loaders`);
    every failure names ``role`` and the file.

    Args:
        path: Local path or any URI mmengine's ``CheckpointLoader`` accepts.
        role: What the checkpoint is for (``'teacher_ckpt'``...), used in
            error messages.

    Returns:
        tuple: Parameter name to tensor, with a DDP ``module.`` prefix
        removed, and the checkpoint's ``meta`` (empty when it has none).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointFileError: ``path`` is a directory, empty, truncated or
            corrupt, or holds no state dict.
        UnsafeCheckpointError: The file holds objects outside the
            weights-only allow-list.
    """
    if '://' not in path and not osp.exists(path):
        raise FileNotFoundError(
            f'`{role}` points to `{path}`, which does not exist. Train that '
            'model first or fix the path in the config (e.g. '
            f'`--cfg-options model.{role}=PATH`).')
    try:
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except (CheckpointFileError, UnsafeCheckpointError) as error:
        raise type(error)(f'`{role}`: {error}') from error
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else checkpoint
    if not isinstance(state_dict, dict):
        raise CheckpointFileError(
            f'`{role}` file `{path}` holds no state dict (a dict of tensors, '
            'alone or under `state_dict`).')
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return OrderedDict((k[7:] if k.startswith('module.') else k, v)
                       for k, v in state_dict.items()), (
                           meta if isinstance(meta, dict) else {})


def read_state_dict(path: str, role: str) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint (see :func:`read_checkpoint`).

    Args:
        path: Local path or any URI mmengine's ``CheckpointLoader`` accepts.
        role: What the checkpoint is for, used in error messages.

    Returns:
        dict: Parameter name to tensor, with a DDP ``module.`` prefix removed.
    """
    return read_checkpoint(path, role)[0]


def check_state_dict_matches(module: nn.Module,
                             state_dict: Dict[str, torch.Tensor], path: str,
                             role: str) -> None:
    """Raise if ``state_dict`` does not fit ``module`` key for key.

    Missing keys, unexpected keys and shape mismatches all raise a
    ``RuntimeError`` naming the file and the first offending keys.

    Args:
        module: The model the weights are for.
        state_dict: The weights.
        path: Where they come from (for the message).
        role: What they are for (``'teacher_ckpt'``...).
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(v.shape)}' for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    lines = [f'`{role}` file `{path}` does not match the model config:']
    for title, keys in (('missing keys', missing),
                        ('unexpected keys', unexpected),
                        ('shape mismatches', mismatched)):
        if keys:
            more = len(keys) - _SHOWN_KEYS
            lines.append(f'  {len(keys)} {title}, first: '
                         f'{keys[:_SHOWN_KEYS]}' +
                         (f' (+{more} more)' if more > 0 else ''))
    if any(k.startswith('student.') for k in unexpected):
        lines.append('  It looks like a distiller checkpoint; export the '
                     'student with `python tools/export_student.py` first.')
    else:
        lines.append('  Check that the checkpoint was trained with this '
                     'very model config.')
    raise RuntimeError('\n'.join(lines))


def load_state_dict_strict(module: nn.Module, path: str, role: str) -> None:
    """Load a checkpoint into ``module``, failing on any mismatch, so that a
    checkpoint from another model never loads silently (see
    :func:`check_state_dict_matches`).

    Args:
        module: The model to load into.
        path: The checkpoint file.
        role: What the checkpoint is for (``'teacher_ckpt'``...).
    """
    state_dict = read_state_dict(path, role)
    check_state_dict_matches(module, state_dict, path, role)
    module.load_state_dict(state_dict, strict=True)
