"""Train a detector or a distiller from a config (mmdet 3.x flags).

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [PATH]]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

On CPU-only machines ``--launcher pytorch`` (through tools/dist_train.sh)
trains with the gloo backend, and ``--amp`` (or a config's
``AmpOptimWrapper``) trains in bfloat16 with ``CPUAmpOptimWrapper``; with a
GPU, ``--amp`` is mmdet's: float16 with a dynamic loss scale.

A second run in a work dir that a live run holds is refused
(``WorkDirBusyError``); ``--resume`` with no path continues from the newest
intact checkpoint, skipping a damaged newer one with a warning; a
``--resume`` or ``load_from`` checkpoint that does not fit the model key for
key stops the run before training (``load_from_strict = False`` in the
config keeps mmengine's partial loading, for fine-tuning from another
model); training stops before the first iteration when a head has fewer
classes than the data set (``DatasetClassesCheckHook``).
"""
import argparse
import contextlib
import os
import os.path as osp
import warnings

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import sea_kd  # noqa: F401  registers distillers; checkpoint safe globals
from sea_kd.compat import (cleanup_distributed, is_cpu_only,
                           setup_cpu_distributed, use_cpu_amp)
from sea_kd.utils import (check_runner_checkpoint, latest_intact_checkpoint,
                          work_dir_lock)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector or a '
                                     'distiller')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='scale the lr by batch')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
            print('AMP training is already enabled in your config.')
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if is_cpu_only() and cfg.get('optim_wrapper'):
        # mmengine's AmpOptimWrapper needs a GPU
        note = use_cpu_amp(cfg.optim_wrapper)
        if note:
            print(note)
    if args.auto_scale_lr:
        if 'auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr:
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" in your config.')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = resume_point(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') == 'DatasetClassesCheckHook' for h in hooks):
        hooks.append(dict(type='DatasetClassesCheckHook'))
    cfg.custom_hooks = hooks
    return cfg


def resume_point(work_dir: str):
    """The newest intact checkpoint of ``work_dir`` (``None``: none yet);
    a corrupt newer one is skipped with a warning that names it."""
    path, skipped = latest_intact_checkpoint(work_dir)
    for bad, reason in skipped:
        warnings.warn(f'Not resuming from `{bad}`: {reason}.' +
                      (f' Resuming from `{path}` instead.' if path else ''))
    if skipped and path is None:
        raise RuntimeError(
            f'No checkpoint to resume from in `{work_dir}`: the '
            f'{len(skipped)} found were passed over (see the warnings above '
            'for why); resume from a checkpoint with `--resume PATH`, or '
            'start again without `--resume`.')
    return path


def main():
    args = parse_args()
    cfg = build_cfg(args)
    setup_cpu_distributed(cfg)
    # one live run per work dir; other ranks of this run share rank 0's lock
    rank = int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')))
    lock = work_dir_lock(
        cfg.work_dir) if rank == 0 else contextlib.nullcontext()
    try:
        with lock:
            if 'runner_type' not in cfg:
                runner = Runner.from_cfg(cfg)
            else:
                runner = RUNNERS.build(cfg)
            check_runner_checkpoint(
                runner, strict_load_from=cfg.get('load_from_strict', True))
            runner.train()
    finally:
        cleanup_distributed()


if __name__ == '__main__':
    main()
