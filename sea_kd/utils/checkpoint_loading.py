"""Strict checkpoint loading with errors that name the file and bad keys."""
from __future__ import annotations

import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from ..compat.checkpoint_loaders import (CheckpointFileError,
                                         UnsafeCheckpointError)
from .model_wrappers import unwrap_model

_SHOWN_KEYS = 5
#: Checkpoint options of a distiller's ``model`` (``--cfg-options
#: model.<key>=PATH``).
MODEL_CHECKPOINT_KEYS = ('teacher_ckpt', 'student_ckpt')


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
        where = (f'in the config (e.g. `--cfg-options model.{role}=PATH`)'
                 if role in MODEL_CHECKPOINT_KEYS else 'on the command line')
        raise FileNotFoundError(
            f'`{role}` points to `{path}`, which does not exist. Train that '
            f'model first or fix the path {where}.')
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


def load_state_dict_strict(module: nn.Module, path: str, role: str) -> dict:
    """Load a checkpoint into ``module``, failing on any mismatch, so that a
    checkpoint from another model never loads silently (see
    :func:`check_state_dict_matches`). A module with a
    ``convert_checkpoint(state_dict)`` method (a backbone teacher taking
    the backbone's keys of a detector's checkpoint) chooses its keys
    first; the check applies to what it returns.

    Args:
        module: The model to load into.
        path: The checkpoint file.
        role: What the checkpoint is for (``'teacher_ckpt'``...).

    Returns:
        The checkpoint's ``meta`` (empty when it has none), so that callers
        need not read the file again.
    """
    state_dict, meta = read_checkpoint(path, role)
    convert = getattr(module, 'convert_checkpoint', None)
    if convert is not None:
        state_dict = convert(state_dict)
    check_state_dict_matches(module, state_dict, path, role)
    module.load_state_dict(state_dict, strict=True)
    return meta


def checkpoint_the_runner_loads(runner) -> Tuple[Optional[str], bool]:
    """The checkpoint mmengine's ``Runner.train`` will load, as its
    ``load_or_resume`` chooses it.

    Args:
        runner: A built mmengine ``Runner``.

    Returns:
        tuple: The path (``None``: nothing is loaded) and whether it is a
        resume.
    """
    from mmengine.runner.checkpoint import find_latest_checkpoint
    load_from = runner._load_from
    if runner._resume:
        return (load_from if load_from is not None else
                find_latest_checkpoint(runner.work_dir)), True
    return load_from, False


def check_runner_checkpoint(runner, strict_load_from: bool = True) -> None:
    """Refuse, before any training, a ``--resume`` or ``load_from``
    checkpoint that does not fit the model key for key.

    mmengine loads both non-strictly: a checkpoint of another model trains
    from scratch with warnings only, and a resume fails later with an
    optimizer parameter-group error. Here the checkpoint is loaded into the
    model strictly (the model's own key conversions apply) and any mismatch
    raises an error naming the file and the keys. The Runner loads the same
    weights again afterwards.

    Args:
        runner: A built mmengine ``Runner`` (before ``train()``).
        strict_load_from: Check ``load_from`` too (a resume is always
            checked). ``False`` keeps mmengine's partial loading, for
            fine-tuning from a checkpoint of another model.

    Raises:
        RuntimeError: The checkpoint does not fit the model.
    """
    path, resume = checkpoint_the_runner_loads(runner)
    if path is None or not (resume or strict_load_from):
        return
    role = 'resume' if resume else 'load_from'
    model = unwrap_model(runner.model)
    state_dict = read_state_dict(path, role)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        fix = ('Resume only from a checkpoint of this very config (its own '
               'work dir).' if resume else
               'To fine-tune from a checkpoint of another model (e.g. '
               'another class count), set `load_from_strict = False` in the '
               'config (`--cfg-options load_from_strict=False`): mismatched '
               'keys are then skipped with warnings.')
        try:
            check_state_dict_matches(model, state_dict, path, role)
        except RuntimeError as mismatch:
            raise RuntimeError(f'{mismatch}\n  {fix}') from None
        raise RuntimeError(f'`{role}` file `{path}` does not fit the model: '
                           f'{error}\n  {fix}') from None
