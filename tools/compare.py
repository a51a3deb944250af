"""Compare distillation methods over several seeds, paired with the student.

    python tools/compare.py --student STUDENT_CONFIG --teacher TEACHER_CONFIG
        --teacher-ckpt TEACHER.pth --methods CONFIG [CONFIG ...]
        [--seeds 0-4] [--jobs 2] [--split val|test] [--work-dir DIR]
        [--fi NAME] [--metric coco/bbox_mAP] [--cfg-options k=v ...]
        [--adopt-unrecorded] [--pairs CONFIG:BASELINE ...]
        [--labels NAME=LABEL ...]

Trains the student alone and every method config with each seed
(``randomness.seed``: same seed, same data order and initialisation), evaluates
each final checkpoint and the teacher on the chosen split, and writes
``comparison.md``, ``comparison.json`` and ``comparison.png`` to the work
dir: mean ± std AP per config, the paired difference from the student and
from feature imitation with its 95 % confidence interval, wins out of N and
the share of the teacher-student gap closed. The figure labels each config
by its method (``--labels`` to choose; ``tools/plot_comparison.py`` draws it
again from ``comparison.json``). While a run is in flight, its progress
(iterations, its time left, the comparison's time left) is shown in place on
a terminal and as a line every 20 seconds otherwise.

Runs already finished are kept (``<work-dir>/<config>/seed<S>/metrics.json``
on val, ``metrics.test.json`` on test; a run trained for one split is only
evaluated for the other), but only with the settings that made them. Each
run writes ``run.json`` when it starts: the SHA-256 of its config as
resolved (``_base_`` files, and the student and teacher configs a distiller
names), the ``--cfg-options``, the seed and the SHA-256 of the teacher
checkpoint (the split is not a setting of the run). A run dir with results
made with other settings, or with results but no ``run.json``, stops the
comparison before anything runs, naming the run dir and what differs: give
a new ``--work-dir``, or delete that run dir to train it again.
``--adopt-unrecorded`` records this command's settings for run dirs
without ``run.json`` (made by an older compare.py) and reuses them.

A run counts as trained only while its final checkpoint is intact (a CRC
check); otherwise it is trained again. An interrupted run resumes from the
newest intact checkpoint in its own dir (a ``last_checkpoint`` naming a
file outside it, as in a copied work dir, is not followed). Each run is
given its config with every option merged, written to ``<run>/configs/``,
so paths with spaces or commas (e.g. ``--teacher-ckpt``) arrive intact.

With ``--jobs N`` the runs go N at a time: one GPU each where GPUs exist,
the CPU cores shared otherwise. ``--split test`` evaluates on the data set's
test split (``annotations/instances_test.json``, images in ``test/``):
choose hyper-parameters on val, report on test.
"""
import argparse
import copy
import functools
import hashlib
import json
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from mmengine.config import Config, DictAction

from sea_kd.analysis.comparison import (MetricsError, Progress, Run,
                                        RunReuseError, adopt_unrecorded,
                                        alias_form_sha256, check_metric,
                                        check_runs, config_name, config_sha256,
                                        evaluator_metric_keys,
                                        finished_metrics, format_markdown,
                                        parse_seeds, plan_runs, resume_point,
                                        run_comparison, run_record, summarize)
from sea_kd.analysis.comparison_plot import parse_labels, plot_comparison
from sea_kd.analysis.run_progress import run_logged

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
    parser.add_argument('--labels', nargs='+', default=[],
                        metavar='NAME=LABEL',
                        help='labels of configs in the figure (default: '
                        'the method of an OpenMMLab-style config name, '
                        '"student" for the student)')
    parser.add_argument('--fi', help='the config name of the second '
                        'baseline every method is paired with (default: '
                        'feature imitation: the method config of type '
                        'FeatureImitationDistiller, or a Distiller with '
                        'FeatureImitation alone, if any); any config of '
                        'the comparison, e.g. a method\'s default when '
                        'comparing its options')
    parser.add_argument('--metric', default='coco/bbox_mAP')
    parser.add_argument('--pairs', nargs='+', default=[],
                        metavar='CONFIG:BASELINE',
                        help='further paired differences between two '
                        'configs of the comparison, by config name, e.g. '
                        'adl-balanced:adl')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='overrides for every run')
    parser.add_argument('--retarget', action='store_true',
                        help='run every method on the --student and '
                        '--teacher configs (model.student, model.teacher; '
                        'with --teacher-ckpt) and on the student config\'s '
                        'data set (its dataloaders, evaluators and val/test '
                        'loops) instead '
                        'of each method config\'s own: the demo methods on '
                        'your own pair and data, without a config each')
    parser.add_argument('--adopt-unrecorded', action='store_true',
                        help='run dirs with results but no run.json (made '
                        'by an older compare.py) were made with these '
                        'settings: record them in their run.json and reuse '
                        'them (otherwise they are refused)')
    return parser.parse_args()


def parse_pairs(items, names):
    """``--pairs`` as ``[(config, baseline), ...]``, checked against the
    comparison's config names before anything runs."""
    pairs = []
    for item in items:
        parts = item.split(':')
        if len(parts) != 2 or not all(parts):
            raise SystemExit(f'--pairs takes CONFIG:BASELINE, got {item!r}.')
        unknown = [p for p in parts if p not in names]
        if unknown:
            raise SystemExit(f'--pairs {item}: {unknown} not among the '
                             f'configs of this comparison {names}.')
        pairs.append(tuple(parts))
    return pairs


def split_options(cfg: Config, split: str) -> dict:
    """Options that point the test loader and evaluator at a split of a
    COCO-layout data set (``instances_<split>.json``, ``<split>/``)."""
    if split == 'val':
        return {}
    dataset = cfg.test_dataloader.dataset
    data_root = dataset.get('data_root', '')
    ann = f'annotations/instances_{split}.json'
    return {'test_dataloader.dataset.ann_file': ann,
            'test_dataloader.dataset.data_prefix.img': f'{split}/',
            'test_evaluator.ann_file': osp.join(data_root, ann)}


RETARGETED = ('train_dataloader', 'val_dataloader', 'test_dataloader',
              'val_evaluator', 'test_evaluator', 'val_cfg', 'test_cfg')


def retarget(cfg: Config, student: Config, args) -> None:
    """``--retarget``: put a method config on the comparison's student and
    teacher and on the student config's data set, in place: each of
    :data:`RETARGETED` is the student's, whole (not merged), and absent
    where the student has none."""
    if 'teacher' not in (cfg.model or {}):
        raise SystemExit(f'--retarget: {cfg.filename} names no teacher '
                         '(model.teacher); list only distiller configs in '
                         '--methods.')
    cfg.model.student = args.student
    cfg.model.teacher = args.teacher
    for key in RETARGETED:
        cfg.pop(key, None)
        if key in student:
            cfg[key] = copy.deepcopy(student[key])


def final_checkpoint(cfg: Config, work_dir: str) -> str:
    train_cfg = cfg.train_cfg
    if train_cfg.get('max_epochs'):
        return osp.join(work_dir, f'epoch_{train_cfg.max_epochs}.pth')
    return osp.join(work_dir, f'iter_{train_cfg.max_iters}.pth')


class Prepared(NamedTuple):
    """A run's configs, every option merged, and the checkpoint to test."""
    train_cfg: Optional[Config]  # None: evaluated only (the teacher)
    test_cfg: Config
    checkpoint: str


def merged(cfg: Config, options: dict) -> Config:
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict(options)
    return cfg


def prepare(args, runs: List[Run]) -> Dict[Tuple[str, Optional[int]],
                                          Prepared]:
    """Per run: its configs and the checkpoint to evaluate; sets each run's
    final ``checkpoint`` and ``record`` (what defines it). Configs are read
    here, in the main thread (mmengine's config loader is not
    thread-safe), each file once."""
    load = functools.lru_cache(maxsize=None)(Config.fromfile)
    student = merged(load(args.student), args.cfg_options) \
        if args.retarget else None
    # the data set --retarget puts in place, recorded with the options: it
    # is in no file the run's config names (the student and teacher are
    # hashed with the config)
    recorded = dict(args.cfg_options, **{'--retarget': hashlib.sha256(
        json.dumps({k: student.get(k) for k in RETARGETED}, sort_keys=True,
                   default=repr).encode()).hexdigest()}) \
        if args.retarget else args.cfg_options
    prepared, noted = {}, set()
    for run in runs:
        options = dict(args.cfg_options)
        method = run.role == 'method'
        if args.teacher_ckpt and 'teacher' in (load(run.config).model or {}):
            options['model.teacher_ckpt'] = args.teacher_ckpt
        if run.seed is not None:
            options['randomness.seed'] = run.seed
        cfg = merged(load(run.config), options)
        if method and args.retarget:
            retarget(cfg, student, args)
            if cfg.get('train_cfg') != student.get('train_cfg') and \
                    run.name not in noted:
                noted.add(run.name)
                print(f'note: {run.name} keeps its own schedule '
                      f'({cfg.train_cfg}), not the student config\'s '
                      f'({student.get("train_cfg")}); give one to all with '
                      '--cfg-options', flush=True)
        trains = run.seed is not None  # the teacher is evaluated only
        run.checkpoint = final_checkpoint(cfg, run.work_dir) if trains \
            else None
        teacher_ckpt = cfg.model.get('teacher_ckpt') if trains \
            else args.teacher_ckpt
        run.record = run_record(
            run.config, config_sha256(run.config, cfg.model, REPO, load),
            recorded if method else args.cfg_options, run.seed,
            teacher_ckpt, REPO)
        run.equivalent_sha256 = alias_form_sha256(run.config, cfg.model,
                                                  REPO, load)
        prepared[(run.name, run.seed)] = Prepared(
            cfg if trains else None,
            merged(cfg, split_options(cfg, args.split)),
            run.checkpoint or args.teacher_ckpt)
    return prepared


def write_configs(runs: List[Run], prepared: dict,
                  split: str) -> Dict[Tuple[str, Optional[int]], tuple]:
    """Write the configs of the runs to do, in the main thread: per run
    ``(train config or None, test config)``, in ``<run>/configs/``."""
    paths = {}
    for run in runs:
        train_cfg, test_cfg, _ = prepared[(run.name, run.seed)]
        folder = osp.join(run.work_dir, 'configs')
        os.makedirs(folder, exist_ok=True)
        train = None
        if train_cfg is not None and not run.trained:
            train = osp.join(folder, f'{run.name}.py')
            train_cfg.dump(train)
        test = osp.join(folder, f'{run.name}.{split}.py')
        test_cfg.dump(test)
        paths[(run.name, run.seed)] = (train, test)
    return paths


def make_executor(args, env_base: dict, prepared: dict, configs: dict,
                  log: Callable[[str], None], progress: Progress):
    """The function that trains and evaluates one run in subprocesses,
    reporting each one's progress (:func:`run_logged`; the overall time
    left from ``progress``)."""
    gpus = _visible_gpus()
    # one line updated in place only for one run at a time on a terminal
    in_place = sys.stdout.isatty() and args.jobs == 1

    def execute(run: Run, slot: int) -> dict:
        env = dict(env_base)
        if gpus:
            env['CUDA_VISIBLE_DEVICES'] = gpus[slot % len(gpus)]
        elif args.jobs > 1:
            env['OMP_NUM_THREADS'] = str(max(1, os.cpu_count() // args.jobs))
        os.makedirs(run.work_dir, exist_ok=True)
        checkpoint = prepared[(run.name, run.seed)].checkpoint
        train_config, test_config = configs[(run.name, run.seed)]
        if train_config is not None:
            resume, notes = resume_point(run.work_dir)
            for note in notes:
                log(f'{run.label()}: {note}')
            _call([sys.executable, 'tools/train.py', train_config,
                   '--work-dir', run.work_dir,
                   *(['--resume', resume] if resume else [])], run, 'train',
                  env, progress=progress, in_place=in_place)
        out = run.metrics_file + '.out'  # written as done by the caller
        _call([sys.executable, 'tools/test.py', test_config, checkpoint,
               '--work-dir', osp.join(run.work_dir, 'test'),
               '--metrics-out', out], run, 'test', env, progress=progress,
              in_place=in_place)
        with open(out) as f:
            return json.load(f)

    return execute


def _call(cmd: list, run: Run, stage: str, env: dict,
          progress: Optional[Progress] = None, in_place: bool = False) -> None:
    run_logged(cmd, osp.join(run.work_dir, f'{stage}.log'),
               f'{run.label()} {stage}', cwd=REPO, env=env,
               overall_left=progress.overall_left if progress else None,
               in_place=in_place)


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


def check_metric_early(metric: str, runs: List[Run],
                       prepared: dict) -> List[str]:
    """Refuse a --metric neither the evaluators nor the finished runs
    report, before anything runs; return the evaluators' metric names."""
    keys = set().union(*(evaluator_metric_keys(p.test_cfg.get(
        'test_evaluator')) for p in prepared.values()))
    found = set().union(*finished_metrics(runs).values())
    if keys or found:
        check_metric(metric, keys | found)
    return sorted(keys)


def main():
    args = parse_args()
    try:  # a bad label fails before any run
        labels = parse_labels(args.labels)
    except ValueError as error:
        raise SystemExit(f'tools/compare.py: {error}') from error
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
    if args.retarget and not (args.teacher and args.teacher_ckpt):
        raise SystemExit('--retarget puts every method on the --student and '
                         '--teacher configs: give --teacher and '
                         '--teacher-ckpt too.')
    pairs = parse_pairs(args.pairs,
                        [config_name(c) for c in configs[:1 + len(
                            args.methods)]])
    work_dir = osp.abspath(args.work_dir)
    runs = plan_runs(work_dir, args.student, args.methods,
                     parse_seeds(args.seeds), args.teacher, args.split)
    unknown = sorted(set(labels) - {run.name for run in runs})
    if unknown:
        raise SystemExit(
            f'tools/compare.py: --labels names {unknown}, which are not '
            f'configs of the comparison; use their names (file names '
            f'without .py).')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
    print(f'{len(runs)} runs ({args.jobs} at a time), split {args.split}, '
          f'work dir {work_dir}', flush=True)
    log = functools.partial(print, flush=True)
    prepared = prepare(args, runs)
    if args.adopt_unrecorded:
        for run in adopt_unrecorded(runs):
            log(f'{run.label()}: recorded this command\'s settings in '
                f'{run.record_file} (--adopt-unrecorded)')
    try:
        check_runs(runs)
        metric_keys = check_metric_early(args.metric, runs, prepared)
        paths = write_configs([r for r in runs if not r.done], prepared,
                              args.split)
        progress = Progress(total=0, jobs=args.jobs)
        run_comparison(runs, make_executor(args, env, prepared, paths, log,
                                           progress),
                       args.jobs, log=log, progress=progress)
        summary = summarize(runs, args.metric, args.fi or detect_fi(
            args.methods), metric_keys, pairs)
    except (RunReuseError, MetricsError, ValueError) as error:
        raise SystemExit(f'tools/compare.py: {error}') from error
    summary.update(split=args.split, seeds=args.seeds,
                   command=' '.join(sys.argv))
    if args.fi:  # a baseline named by the user: name it in the table
        summary['baseline_label'] = f'`{args.fi}`'
    summary['labels'] = labels
    table = format_markdown(summary)
    with open(osp.join(work_dir, 'comparison.md'), 'w') as f:
        f.write(f'`python {" ".join(sys.argv)}` (split {args.split})\n\n'
                + table)
    with open(osp.join(work_dir, 'comparison.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    plot_comparison(summary, osp.join(work_dir, 'comparison.png'),
                    summary['labels'])
    print(table, flush=True)


if __name__ == '__main__':
    main()
