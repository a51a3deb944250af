"""Record the losses of a config's first iterations, or compare two records.

    python tools/loss_trace.py CONFIG [CONFIG ...] --out DIR [--iters 20]
        [--against OLD] [--cfg-options k=v ...]

Each config trains for ``--iters`` iterations (seed 0, no
validation, no checkpoints) in ``DIR/<config name>/``, and the losses it
logs at every iteration (the step record of ``train_step``: every loss, the
balance factors and shares) are written to ``DIR/<config name>.json`` at full
precision. With ``--against OLD`` each new record is compared with the one of
the same name in ``OLD`` and the largest absolute difference per config is
printed (``0`` means bit-identical); the tool exits non-zero when any config
differs, lacks a record or fails to run (the others still run). This is the
check that a refactoring left training unchanged: record before, record
after, compare (docs/architecture.md).

A distiller whose ``teacher_ckpt`` does not exist is given a teacher with
the teacher config's initial weights (seed 0, saved once under
``DIR/teachers/``), so the trace needs no trained teacher; both records of a
comparison then use the same kind of teacher.
"""
import argparse
import hashlib
import json
import math
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, init_default_scope
from mmengine.runner import Runner, set_random_seed

import sea_kd  # noqa: F401  registers distillers

TRACE_HOOK = 'LossTraceRecordHook'


@HOOKS.register_module(name=TRACE_HOOK, force=True)
class LossTraceRecordHook(Hook):
    """Keeps the step record of every training iteration, as floats."""

    priority = 'LOWEST'

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.rows.append({
            key: float(value.detach()) if torch.is_tensor(value) else
            float(value)
            for key, value in sorted((outputs or {}).items())
        })


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--out', required=True,
                        help='directory for the records and the runs')
    parser.add_argument('--iters', type=int, default=20,
                        help='training iterations recorded (default 20)')
    parser.add_argument('--against',
                        help='directory of earlier records to compare with')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={},
                        help='override settings of every config, key=value')
    return parser.parse_args(argv)


def name_of(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def initial_teacher(teacher: str, out: str, classes) -> str:
    """A checkpoint of ``teacher``'s initial weights (seed 0), made once
    per version of the teacher config."""
    with open(teacher, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    path = osp.join(out, 'teachers', f'{name_of(teacher)}-{digest}.pth')
    if not osp.isfile(path):
        init_default_scope('mmdet')
        set_random_seed(0)
        from mmdet.registry import MODELS
        model = MODELS.build(Config.fromfile(teacher).model)
        model.init_weights()
        os.makedirs(osp.dirname(path), exist_ok=True)
        torch.save(dict(state_dict=model.state_dict(),
                        meta=dict(dataset_meta=dict(classes=classes))),
                   path)
    return path


def trace_cfg(config: str, out: str, iters: int,
              options: dict = None) -> Config:
    """``config`` (``options`` merged) set up for a short, seeded, recorded
    run."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options or {})
    name = name_of(config)
    cfg.work_dir = osp.join(out, name)
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=0)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters + 1)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    hooks = dict(cfg.get('default_hooks') or {})
    hooks['checkpoint'] = None
    hooks['logger'] = dict(type='LoggerHook', interval=max(iters // 4, 1))
    cfg.default_hooks = hooks
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type=TRACE_HOOK)]
    model = cfg.model
    if 'teacher_ckpt' in model and not osp.isfile(str(model.teacher_ckpt)):
        teacher = model.teacher
        if not isinstance(teacher, str):
            raise SystemExit(f'{config}: `teacher_ckpt` '
                             f'{model.teacher_ckpt!r} does not exist and '
                             'the teacher is not a config file; train the '
                             'teacher first.')
        teacher = teacher.replace('{{fileDirname}}', osp.dirname(config))
        classes = cfg.train_dataloader.dataset.get('metainfo', {}).get(
            'classes')
        model.teacher_ckpt = initial_teacher(teacher, out, classes)
    return cfg


def record(config: str, out: str, iters: int, options: dict = None) -> list:
    """Train ``config`` for ``iters`` iterations and write its record."""
    cfg = trace_cfg(config, out, iters, options)
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if isinstance(h, LossTraceRecordHook))
    rows = hook.rows
    with open(osp.join(out, name_of(config) + '.json'), 'w') as f:
        json.dump(dict(config=config, iters=iters, rows=rows), f, indent=1)
    return rows


def largest_difference(new: list, old: list) -> float:
    """The largest absolute difference between two records (``inf`` when
    they differ in length, keys or finiteness)."""
    if len(new) != len(old):
        return math.inf
    largest = 0.0
    for a, b in zip(new, old):
        if a.keys() != b.keys():
            return math.inf
        for key in a:
            if math.isnan(a[key]) or math.isnan(b[key]):
                if math.isnan(a[key]) != math.isnan(b[key]):
                    return math.inf
                continue
            if a[key] != b[key]:
                largest = max(largest, abs(a[key] - b[key]))
    return largest


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.against and osp.realpath(args.against) == osp.realpath(args.out):
        raise SystemExit('--out and --against name the same directory: the '
                         'new records would replace the ones they are '
                         'compared with. Record into another directory.')
    failed = []
    for config in args.configs:
        try:
            rows = record(config, args.out, args.iters, args.cfg_options)
        except Exception as error:  # one config's problem stops no other
            print(f'{name_of(config)}: not recorded: '
                  f'{type(error).__name__}: {error}')
            failed.append(config)
            continue
        if not args.against:
            continue
        old = osp.join(args.against, name_of(config) + '.json')
        if not osp.isfile(old):
            print(f'{name_of(config)}: no record in {args.against}')
            failed.append(config)
            continue
        with open(old) as f:
            diff = largest_difference(rows, json.load(f)['rows'])
        print(f'{name_of(config)}: largest difference {diff:g}')
        if diff:
            failed.append(config)
    if args.against:
        print(f'{len(args.configs) - len(failed)} of {len(args.configs)} '
              'configs bit-identical')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
