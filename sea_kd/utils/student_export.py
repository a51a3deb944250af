"""Turn a distiller checkpoint into a plain mmdet checkpoint of the student."""
from __future__ import annotations

import os.path as osp
from collections import OrderedDict
from typing import Optional

import torch
from mmengine.config import Config

from .atomic_write import atomic_open
from .checkpoint_loading import check_state_dict_matches, read_state_dict

STUDENT_PREFIX = 'student.'


def export_student(checkpoint: str,
                   out_file: str,
                   config: Optional[str] = None) -> dict:
    """Write the student's weights of a distiller checkpoint to ``out_file``.

    The result holds ``state_dict`` (the student's keys without the
    ``student.`` prefix) and ``meta``; nothing but tensors and plain types, so
    it loads under ``torch.load(weights_only=True)`` with any torch.

    Args:
        checkpoint: A checkpoint saved while training a distiller.
        out_file: Where to write the student checkpoint.
        config: The distiller config. When given, the student is built from
            it and the exported weights are loaded strictly (no missing or
            unexpected keys) before anything is written.

    The file is written to a temporary file next to ``out_file`` and then
    renamed, so an interrupted export never leaves a partial checkpoint, and
    ``out_file`` may not be ``checkpoint`` itself (that would throw away the
    optimizer state, the distillation modules and the training history).

    Returns:
        dict: ``num_tensors``, ``dropped`` (distillation-module keys left
        out) and ``verified``.

    Raises:
        ValueError: ``out_file`` is ``checkpoint``, or ``checkpoint`` holds
            no ``student.*`` weights.
    """
    if (osp.exists(checkpoint) and osp.exists(out_file)
            and osp.samefile(checkpoint, out_file)):
        raise ValueError(
            f'The output `{out_file}` is the distiller checkpoint itself; '
            'writing the student over it would lose the optimizer state, the '
            'distillation modules and the training history. Give another '
            'output path.')
    state_dict = read_state_dict(checkpoint, 'checkpoint')
    student = OrderedDict((k[len(STUDENT_PREFIX):], v)
                          for k, v in state_dict.items()
                          if k.startswith(STUDENT_PREFIX))
    if not student:
        raise ValueError(
            f'`{checkpoint}` holds no `student.*` weights: it is not a '
            'distiller checkpoint (a plain detector checkpoint needs no '
            'export).')
    dropped = sorted({k.split('.')[0] for k in state_dict
                      if not k.startswith(STUDENT_PREFIX)})
    verified = False
    if config is not None:
        verified = _verify(student, config, out_file)
    _save_atomically(
        dict(
            state_dict=student,
            meta=dict(exported_from=str(checkpoint), exporter='sea_kd')),
        out_file)
    return dict(num_tensors=len(student), dropped=dropped, verified=verified)


def _verify(student_state: dict, config: str, out_file: str) -> bool:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from .config_loading import load_model_cfg
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(config)
    if 'student' not in cfg.model:
        raise ValueError(f'`{config}` is not a distiller config (its model '
                         'has no `student`).')
    model = MODELS.build(load_model_cfg(cfg.model.student, 'student'))
    check_state_dict_matches(model, student_state, out_file,
                             'exported student')
    return True


def _save_atomically(obj: dict, out_file: str) -> None:
    """``torch.save`` to ``out_file`` through :func:`atomic_open`: an
    interrupted export leaves no partial file, and the file gets the mode
    any new file gets under the umask (it is shared like any other
    checkpoint)."""
    with atomic_open(out_file, 'wb') as f:
        torch.save(obj, f)
