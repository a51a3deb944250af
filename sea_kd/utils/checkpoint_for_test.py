"""What ``tools/test.py`` builds and loads for a config and a checkpoint."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from mmengine.config import Config
from torch import nn

from .checkpoint_loading import check_state_dict_matches, read_checkpoint
from .config_loading import load_model_cfg

STUDENT_PREFIX = 'student.'
#: Hooks that act on a distiller only; a student-only test run drops them.
DISTILLER_HOOKS = ('TeacherEvaluationHook', 'DistillLossWeightHook')


class CheckpointConfigMismatch(RuntimeError):
    """The checkpoint was not trained with the given config."""


def is_distiller_cfg(model_cfg) -> bool:
    """Whether a ``model`` config is a distiller (has student and teacher)."""
    return hasattr(model_cfg, 'get') and 'student' in model_cfg and \
        'teacher' in model_cfg


def describe_origin(meta: dict) -> str:
    """Where a checkpoint came from, from its ``meta``, for messages."""
    if meta.get('exported_from'):
        return ('it is a student exported from the distiller checkpoint '
                f'`{meta["exported_from"]}`')
    if meta.get('experiment_name'):
        return f'it was written by the run `{meta["experiment_name"]}`'
    return 'its meta data does not say which run wrote it'


def prepare_test(cfg: Config,
                 checkpoint: str) -> Tuple[Config, Dict[str, torch.Tensor], str]:
    """Choose the model to test and the weights it must load strictly.

    * A plain detector config takes a plain (e.g. exported) checkpoint.
    * A distiller config takes a distiller checkpoint; only the student
      predicts, so the model to test becomes the student (with the
      distiller's data preprocessor) and the teacher is neither built nor
      read: its checkpoint need not exist.

    A distiller checkpoint with a plain config, or a plain checkpoint with a
    distiller config, raises :class:`CheckpointConfigMismatch` naming which
    config it belongs to; key mismatches are left to :func:`load_for_test`.

    Args:
        cfg: The test config (changed in place).
        checkpoint: The checkpoint path.

    Returns:
        tuple: ``cfg``, the state dict for ``cfg.model`` and
        :func:`describe_origin` of the checkpoint.
    """
    state, meta = read_checkpoint(checkpoint, 'checkpoint')
    distiller_ckpt = any(k.startswith(STUDENT_PREFIX) for k in state)
    origin = describe_origin(meta)
    if is_distiller_cfg(cfg.model):
        if not distiller_ckpt:
            raise CheckpointConfigMismatch(
                f'`{checkpoint}` is a plain detector checkpoint ({origin}), '
                'but the config is a distiller config. Evaluate an exported '
                "student with the student's own config (the distiller's "
                '`model.student`), a teacher with the teacher config.')
        model_cfg = load_model_cfg(cfg.model.student, 'student')
        if cfg.model.get('data_preprocessor') is not None:
            model_cfg['data_preprocessor'] = cfg.model.data_preprocessor
        cfg.model = model_cfg
        cfg.custom_hooks = [
            hook for hook in (cfg.get('custom_hooks', None) or [])
            if hook.get('type') not in DISTILLER_HOOKS
        ]
        state = type(state)((k[len(STUDENT_PREFIX):], v)
                            for k, v in state.items()
                            if k.startswith(STUDENT_PREFIX))
    elif distiller_ckpt:
        raise CheckpointConfigMismatch(
            f'`{checkpoint}` is a distiller checkpoint ({origin}), but the '
            'config is a plain detector config. Evaluate it with the '
            'distiller config it was trained with, or export its student '
            'first: python tools/export_student.py DISTILLER_CONFIG '
            f'{checkpoint} student.pth')
    return cfg, state, origin


def load_for_test(model: nn.Module, state: Dict[str, torch.Tensor],
                  checkpoint: str, origin: str) -> None:
    """Load ``state`` into ``model`` strictly, or raise naming the file.

    Args:
        model: The (unwrapped) model the test runs.
        state: From :func:`prepare_test`.
        checkpoint: The checkpoint path (for the message).
        origin: :func:`describe_origin` of the checkpoint.

    Raises:
        CheckpointConfigMismatch: Missing, unexpected or misshapen keys.
    """
    try:
        check_state_dict_matches(model, state, checkpoint, 'checkpoint')
    except RuntimeError as error:
        raise CheckpointConfigMismatch(
            f'{error}\n  About the checkpoint: {origin}.') from None
    model.load_state_dict(state, strict=True)
