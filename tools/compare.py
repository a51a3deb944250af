"""Compare distillation methods over several seeds, paired with the student.

    python tools/compare.py --student STUDENT_CONFIG --teacher TEACHER_CONFIG
        --teacher-ckpt TEACHER.pth --methods CONFIG [CONFIG ...]
        [--seeds 0-4] [--jobs 2] [--split val|test] [--work-dir DIR]
        [--fi NAME] [--metric coco/bbox_mAP] [--cfg-options k=v ...]

Trains the student alone and every method config with each seed
(``randomness.seed``: same seed, same data order and initialisation), evaluates
each final checkpoint and the teacher on the chosen split, and writes
``comparison.md``, ``comparison.json`` and ``comparison.png`` to the work
dir: mean ± std AP per config, the paired difference from the student and
from feature imitation with its 95 % confidence interval, wins out of N and
the share of the teacher-student gap closed.

Runs already finished are kept (``<work-dir>/<config>/seed<S>/metrics.json``
on val, ``metrics.test.json`` on test; a run trained for one split is only
evaluated for the other); an interrupted run resumes from its last
checkpoint. With ``--jobs N`` the
runs go N at a time: one GPU each where GPUs exist, the CPU cores shared
otherwise. ``--split test`` evaluates on the data set's test split
(``annotations/instances_test.json``, images in ``test/``): choose
hyper-parameters on val, report on test.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

from mmengine.config import Config, DictAction

from sea_kd.engine.comparison import (Run, format_markdown, parse_seeds,
                                      plan_runs, plot_comparison,
                                      run_comparison, summarize)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--student', required=True,
                        help='the student config, trained alone')
    parser.add_argument('--teacher', help='the teacher config (evaluated)')
    parser.add_argument('--teacher-ckpt',
                        help='the teacher checkpoint; also given to every '
                        'method (default: each config\'s own teacher_ckpt)')
    parser.add_argument('--methods', nargs='+', required=True,
                        help='distiller configs')
    parser.add_argument('--seeds', default='0-2', help="e.g. '0-4', '0,3'")
    parser.add_argument('--jobs', type=int, default=1)
    parser.add_argument('--split', default='val', choices=['val', 'test'])
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--fi', help='the config name of the second '
                        'baseline every method is paired with (default: '
                        'feature imitation: the method config of type '
                        'FeatureImitationDistiller, or a Distiller with '
                        'FeatureImitation alone, if any); any config of '
                        'the comparison, e.g. a method\'s default when '
                        'comparing its options')
    parser.add_argument('--metric', default='coco/bbox_mAP')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='overrides for every run')
    return parser.parse_args()


def split_options(cfg: Config, split: str) -> list:
    """--cfg-options that point the test loader and evaluator at a split of
    a COCO-layout data set (``instances_<split>.json``, ``<split>/``)."""
    if split == 'val':
        return []
    dataset = cfg.test_dataloader.dataset
    data_root = dataset.get('data_root', '')
    ann = f'annotations/instances_{split}.json'
    return [f'test_dataloader.dataset.ann_file={ann}',
            f'test_dataloader.dataset.data_prefix.img={split}/',
            f'test_evaluator.ann_file={osp.join(data_root, ann)}']


def final_checkpoint(cfg: Config, work_dir: str) -> str:
    train_cfg = cfg.train_cfg
    if train_cfg.get('max_epochs'):
        return osp.join(work_dir, f'epoch_{train_cfg.max_epochs}.pth')
    return osp.join(work_dir, f'iter_{train_cfg.max_iters}.pth')


def options_list(options: dict) -> list:
    return [f'{k}={v}' for k, v in options.items()]


def merged(config: str, options: dict) -> Config:
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    return cfg


def prepare(args, runs: list) -> dict:
    """Per run: its --cfg-options, the checkpoint to evaluate and the split
    options. Configs are read here, in the main thread (mmengine's config
    loader is not thread-safe)."""
    prepared = {}
    for run in runs:
        options = dict(args.cfg_options)
        is_distiller = 'teacher' in (Config.fromfile(run.config).model or {})
        if args.teacher_ckpt and is_distiller:
            options['model.teacher_ckpt'] = args.teacher_ckpt
        if run.seed is not None:
            options['randomness.seed'] = run.seed
        cfg = merged(run.config, options)
        checkpoint = args.teacher_ckpt if run.seed is None else \
            final_checkpoint(cfg, run.work_dir)
        prepared[(run.name, run.seed)] = (options, checkpoint,
                                          split_options(cfg, args.split))
    return prepared


def make_executor(args, env_base: dict, prepared: dict):
    """The function that trains and evaluates one run in subprocesses."""
    gpus = _visible_gpus()

    def execute(run: Run, slot: int) -> dict:
        env = dict(env_base)
        if gpus:
            env['CUDA_VISIBLE_DEVICES'] = gpus[slot % len(gpus)]
        elif args.jobs > 1:
            env['OMP_NUM_THREADS'] = str(max(1, os.cpu_count() // args.jobs))
        os.makedirs(run.work_dir, exist_ok=True)
        options, checkpoint, on_split = prepared[(run.name, run.seed)]
        if run.seed is not None and not osp.isfile(checkpoint):
            resume = ['--resume'] if osp.isfile(
                osp.join(run.work_dir, 'last_checkpoint')) else []
            _call([sys.executable, 'tools/train.py', run.config,
                   '--work-dir', run.work_dir, *resume, '--cfg-options',
                   *options_list(options)], run, 'train', env)
        out = run.metrics_file + '.out'  # written as done by the caller
        overrides = [*options_list(options), *on_split]
        _call([sys.executable, 'tools/test.py', run.config, checkpoint,
               '--work-dir', osp.join(run.work_dir, 'test'),
               '--metrics-out', out,
               *(['--cfg-options', *overrides] if overrides else [])],
              run, 'test', env)
        with open(out) as f:
            return json.load(f)

    return execute


def _call(cmd: list, run: Run, stage: str, env: dict) -> None:
    log = osp.join(run.work_dir, f'{stage}.log')
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{stage} of {run.label()} failed (exit '
                           f'{proc.returncode}); log {log}:\n{tail}')


def _visible_gpus() -> list:
    try:
        import torch
        count = torch.cuda.device_count()
    except Exception:
        count = 0
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible:
        return [g for g in visible.split(',') if g][:count or None]
    return [str(i) for i in range(count)]


def detect_fi(methods: list) -> str:
    for config in methods:
        model = Config.fromfile(config).model
        kinds = [m.get('type') for m in model.get('methods', [])]
        if model.get('type') == 'FeatureImitationDistiller' or (
                model.get('type') == 'Distiller'
                and kinds == ['FeatureImitation']):
            return osp.splitext(osp.basename(config))[0]
    return None


def main():
    args = parse_args()
    configs = [args.student, *args.methods] + (
        [args.teacher] if args.teacher else [])
    configs = [osp.abspath(c) for c in configs]
    args.student, args.methods = configs[0], configs[1:1 + len(args.methods)]
    args.teacher = configs[-1] if args.teacher else None
    if args.teacher and not args.teacher_ckpt:
        raise SystemExit('--teacher needs --teacher-ckpt (the teacher is '
                         'evaluated, not trained).')
    if args.teacher_ckpt:
        args.teacher_ckpt = osp.abspath(args.teacher_ckpt)
    work_dir = osp.abspath(args.work_dir)
    runs = plan_runs(work_dir, args.student, args.methods,
                     parse_seeds(args.seeds), args.teacher, args.split)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
    print(f'{len(runs)} runs ({args.jobs} at a time), split {args.split}, '
          f'work dir {work_dir}', flush=True)
    prepared = prepare(args, [r for r in runs if not r.done])
    run_comparison(runs, make_executor(args, env, prepared), args.jobs,
                   log=lambda line: print(line, flush=True))
    summary = summarize(runs, args.metric, args.fi or detect_fi(
        args.methods))
    summary.update(split=args.split, seeds=args.seeds,
                   command=' '.join(sys.argv))
    if args.fi:  # a baseline named by the user: name it in the table
        summary['baseline_label'] = f'`{args.fi}`'
    table = format_markdown(summary)
    with open(osp.join(work_dir, 'comparison.md'), 'w') as f:
        f.write(f'`python {" ".join(sys.argv)}` (split {args.split})\n\n'
                + table)
    with open(osp.join(work_dir, 'comparison.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    plot_comparison(summary, osp.join(work_dir, 'comparison.png'))
    print(table, flush=True)


if __name__ == '__main__':
    main()
