"""What ``tools/test.py`` builds and loads for a config and a checkpoint."""
from __future__ import annotations

import os.path as osp
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
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


def prepare_test(
        cfg: Config,
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


class _ConfigDumpInLogDir:
    """Runner mixin: the config is dumped into the run's own log dir."""

    @master_only
    def dump_config(self) -> None:
        """Dump the config to ``log_dir`` (``work_dir/<timestamp>``) under
        the name mmengine gives it in ``work_dir``."""
        if self.cfg.filename is not None:
            filename = osp.basename(self.cfg.filename)
        else:
            filename = f'{self.timestamp}.py'
        self.cfg.dump(osp.join(self.log_dir, filename))


def build_test_runner(cfg: Config) -> Runner:
    """Build the Runner of ``cfg`` (its ``runner_type``, if any, as
    ``RUNNERS.build`` would) for a test run.

    mmengine's Runner dumps its config to ``work_dir/<config file name>``.
    A test run usually shares its work dir with the training run whose
    checkpoint it tests, and the config it holds differs from the training
    run's (a distiller config becomes its student, ``load_from`` is unset,
    ``--cfg-options`` apply), so that dump would replace the training run's
    record of its config. This Runner dumps the test run's config into its
    own log dir, ``work_dir/<timestamp>/<config file name>``, next to its
    log; ``work_dir/<config file name>`` stays the training run's.

    Args:
        cfg: The test config (after :func:`prepare_test`).

    Returns:
        The Runner, of a subclass of the configured runner class that
        differs from it only in where it dumps the config.
    """
    runner_type = cfg.get('runner_type', 'Runner')
    with RUNNERS.switch_scope_and_registry(cfg.get('_scope_')) as registry:
        base = registry.get(runner_type) if isinstance(runner_type, str) \
            else runner_type
    if base is None:
        raise KeyError(f'runner_type={runner_type!r} is not in the '
                       f'{registry.name} registry; register the runner '
                       'class or fix the name.')
    runner_cls = type(base.__name__, (_ConfigDumpInLogDir, base),
                      dict(__module__=__name__))
    if hasattr(runner_cls, 'from_cfg'):
        return runner_cls.from_cfg(cfg)
    return runner_cls(**cfg)
