"""The demo: teachers, baseline students and distilled students on
generated data, with a table of COCO APs per teacher-student pair.

    python tools/demo.py [--pairs retinanet faster-rcnn-to-retinanet
                          faster-rcnn]
        [--methods fi adl sea tbd gdetkd sad-online ... | all]
        [--work-dir DIR]

By default it shows the four methods at work against the student and
feature imitation: FI, ADL, SEA and TBD on the RetinaNet pair and G-DetKD
on the heterogeneous pair (a Faster R-CNN teacher teaching the RetinaNet
student), one seed each, quick protocol. Each run is a subprocess of
tools/train.py, tools/export_student.py and tools/test.py, exactly the
commands a user types. A teacher is trained only when its checkpoint (the
distiller config's ``teacher_ckpt``) is absent, a run only when its final
checkpoint is. While a run trains or is evaluated, its progress is shown
(iterations done of total, the run's time left from its own log, the time
left for the whole demo): in place on a terminal, as a line every 20
seconds otherwise. A line (run i of n, elapsed, time left) follows each
run, and each pair's table is printed as soon as the pair is done.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

from mmengine.config import Config

from sea_kd.analysis.run_progress import clock, run_logged
from sea_kd.analysis.synthetic_coco import generate_synthetic_coco
from sea_kd.datasets import split_labeled_unlabeled

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join('configs', 'demo')
PAIRS = {
    'retinanet': dict(
        teacher='retinanet_r18_synthetic.py',
        student='retinanet_r18-w16_synthetic.py',
        distillers={
            'fi': 'fi_retinanet_r18_to_r18-w16_synthetic.py',
            'adl': 'adl_retinanet_r18_to_r18-w16_synthetic.py',
            'sad-online': 'sad-online_retinanet_r18_to_r18-w16_synthetic.py',
            'sad-offline':
            'sad-offline_retinanet_r18_to_r18-w16_synthetic.py',
            'sea': 'sea_retinanet_r18_to_r18-w16_synthetic.py',
            'tbd': 'tbd_retinanet_r18_to_r18-w16_synthetic.py',
            'tbd-hd': 'hd_retinanet_r18_to_r18-w16_synthetic.py',
            'tbd-tfd': 'tfd_retinanet_r18_to_r18-w16_synthetic.py',
            'pkd': 'pkd_retinanet_r18_to_r18-w16_synthetic.py',
            'cwd': 'cwd_retinanet_r18_to_r18-w16_synthetic.py',
            'at': 'at_retinanet_r18_to_r18-w16_synthetic.py',
            'fi-adl': 'fi-adl_retinanet_r18_to_r18-w16_synthetic.py',
            'mgd': 'mgd_retinanet_r18_to_r18-w16_synthetic.py',
            'fgd': 'fgd_retinanet_r18_to_r18-w16_synthetic.py',
            'crosskd': 'crosskd_retinanet_r18_to_r18-w16_synthetic.py',
            'crosskd-pkd': 'crosskd-pkd_retinanet_r18_to_r18-w16_synthetic.py',
        }),
    'gfl': dict(
        teacher='gfl_r18_synthetic.py',
        student='gfl_r18-w16_synthetic.py',
        distillers={
            'fi': 'fi_gfl_r18_to_r18-w16_synthetic.py',
            'ld': 'ld_gfl_r18_to_r18-w16_synthetic.py',
            'crosskd': 'crosskd_gfl_r18_to_r18-w16_synthetic.py',
        }),
    'faster-rcnn-to-retinanet': dict(
        teacher='faster-rcnn_r18_synthetic.py',
        student='retinanet_r18-w16_synthetic.py',
        distillers={
            'gdetkd':
            'gdetkd_faster-rcnn-r18_to_retinanet-r18-w16_synthetic.py',
        }),
    'faster-rcnn': dict(
        teacher='faster-rcnn_r18_synthetic.py',
        student='faster-rcnn_r18-w16_synthetic.py',
        distillers={
            'fi': 'fi_faster-rcnn_r18_to_r18-w16_synthetic.py',
            'sea': 'sea_faster-rcnn_r18_to_r18-w16_synthetic.py',
            'gdetkd': 'gdetkd_faster-rcnn_r18_to_r18-w16_synthetic.py',
        }),
}
DEFAULT_PAIRS = ['retinanet', 'faster-rcnn-to-retinanet']
DEFAULT_METHODS = ['fi', 'adl', 'sea', 'tbd', 'gdetkd']

METHODS = ['fi', 'adl', 'sad-online', 'sad-offline', 'sea', 'tbd', 'tbd-hd',
           'tbd-tfd', 'gdetkd', 'pkd', 'cwd', 'mgd', 'fgd', 'ld', 'crosskd',
           'crosskd-pkd', 'at', 'fi-adl']


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def name_of(config):
    return osp.splitext(osp.basename(config))[0]


def train(config, work_dir, log_dir, progress=None):
    """Train and return the final checkpoint (skips a finished run)."""
    last = osp.join(work_dir, 'last_checkpoint')
    cfg = Config.fromfile(osp.join(REPO, config))
    final = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    if not osp.exists(final):
        log = osp.join(log_dir, name_of(config) + '.train.log')
        print(f'training {config} (log: {log})', flush=True)
        run_logged([sys.executable, 'tools/train.py', config, '--work-dir',
                    work_dir], log, f'train {name_of(config)}', cwd=REPO,
                   overall_left=progress.overall_left if progress else None)
    assert osp.exists(last), f'no checkpoint written by {config}'
    return final


def evaluate(config, checkpoint, work_dir, log_dir):
    out = osp.join(work_dir, 'metrics.json')
    log = osp.join(log_dir, osp.basename(work_dir) + '.test.log')
    run_logged([sys.executable, 'tools/test.py', config, checkpoint,
                '--work-dir', work_dir, '--metrics-out', out], log,
               f'test {osp.basename(work_dir)}', cwd=REPO)
    with open(out) as f:
        return json.load(f)


def prepare_semi_supervised(method, teacher_cfg, teacher_ckpt):
    """Hold out half of the training labels; label them offline for SAD."""
    ann = osp.join(REPO, 'data', 'synthetic_coco', 'annotations')
    split_labeled_unlabeled(osp.join(ann, 'instances_train.json'), 0.5)
    if method == 'sad-offline':
        run([sys.executable, 'tools/pseudo_label.py', teacher_cfg,
             teacher_ckpt, osp.join(ann, 'instances_train_pseudo.json'),
             '--ann-file', osp.join(ann, 'instances_train_unlabeled.json'),
             '--img-dir', osp.join(REPO, 'data', 'synthetic_coco', 'train'),
             '--score-thr', '0.5'])


class Progress:
    """``[i/n] label: done in s; elapsed e, about t left`` after each run.

    The time left is the seconds per training iteration measured so far
    times the iterations still to train (runs already finished count 0):
    a rough figure, as iterations of different detectors take different
    times; the evaluations and exports add about a quarter of a minute per
    run.
    """

    def __init__(self, jobs):
        self.jobs = jobs  # [(label, iterations)]
        self.done = 0
        self.start = time.time()
        self.trained_iters = 0
        self.train_seconds = 0.0

    def finished(self, label, iterations, seconds):
        self.done += 1
        self.trained_iters += iterations
        self.train_seconds += seconds if iterations else 0.0
        left_iters = sum(it for _, it in self.jobs[self.done:])
        rate = self.train_seconds / self.trained_iters \
            if self.trained_iters else None
        left = f'about {clock(rate * left_iters)} left' if rate else \
            'time left not known yet'
        line = (f'[{self.done}/{len(self.jobs)}] {label}: done in '
                f'{clock(seconds)}; elapsed {clock(time.time() - self.start)}'
                f', {left}')
        print(line, flush=True)
        return line

    def overall_left(self, state, elapsed):
        """Seconds left for the whole demo while run ``done + 1`` trains:
        its own time left (mmengine's ``eta`` in its log) plus the seconds
        per iteration so far (or this run's) times the iterations of the
        runs after it; ``None`` until the log gives an estimate."""
        if state is None or state.stage != 'train' or state.eta is None:
            return None
        after = sum(it for _, it in self.jobs[self.done + 1:])
        rate = self.train_seconds / self.trained_iters \
            if self.trained_iters else \
            (elapsed + state.eta) / max(state.total, 1)
        return state.eta + rate * after


def iterations_to_train(config, work_dir):
    """0 when the run's final checkpoint exists, else its ``max_iters``."""
    cfg = Config.fromfile(osp.join(REPO, config))
    final = osp.join(REPO, work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    return 0 if osp.exists(final) else cfg.train_cfg.max_iters


def plan(pairs, methods, work_dir, exists=osp.exists):
    """The runs of the demo in order, each once: ``[(label, config,
    work_dir, kind)]`` with kind ``'teacher'``, ``'student'`` or the
    method; a teacher only when ``exists`` says its checkpoint is absent."""
    runs, seen = [], set()
    for pair in pairs:
        spec = PAIRS[pair]
        first = Config.fromfile(
            osp.join(REPO, DEMO, next(iter(spec['distillers'].values()))))
        entries = []
        if not exists(osp.join(REPO, first.model.teacher_ckpt)):
            entries.append(('teacher', spec['teacher']))
        entries.append(('student', spec['student']))
        entries += [(m, c) for m, c in spec['distillers'].items()
                    if m in methods]
        for kind, config in entries:
            config = osp.join(DEMO, config)
            run_dir = osp.join(work_dir, name_of(config))
            if run_dir in seen:
                continue
            seen.add(run_dir)
            runs.append((f'{pair} {kind} ({name_of(config)})', config,
                         run_dir, kind))
    return runs


def print_table(pair, results):
    print(f'\n{pair}: COCO bbox AP on the generated validation split')
    print(f'{"model":<12} {"AP":>6} {"AP50":>6}')
    for model, metrics in results.items():
        print(f'{model:<12} {100 * metrics.get("coco/bbox_mAP", 0.0):6.1f} '
              f'{100 * metrics.get("coco/bbox_mAP_50", 0.0):6.1f}')
    print(flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pairs', nargs='+', default=DEFAULT_PAIRS,
                        choices=list(PAIRS))
    parser.add_argument('--methods', nargs='+', default=DEFAULT_METHODS,
                        choices=METHODS + ['all'],
                        help='distillers to run where a pair has them '
                        '(default: fi adl sea tbd gdetkd; all: every one)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    if 'all' in args.methods:
        args.methods = METHODS
    os.makedirs(osp.join(REPO, args.work_dir), exist_ok=True)
    log_dir = osp.join(REPO, args.work_dir, 'logs')
    os.makedirs(log_dir, exist_ok=True)

    # the data set of tools/make_synthetic_coco.py's defaults (test split too)
    print(generate_synthetic_coco(osp.join(REPO, 'data', 'synthetic_coco'),
                                  num_test=200))
    runs = plan(args.pairs, args.methods, args.work_dir)
    progress = Progress([(label, iterations_to_train(config, run_dir))
                         for label, config, run_dir, _ in runs])
    print(f'{len(runs)} runs: ' + ', '.join(label for label, *_ in runs),
          flush=True)
    checkpoints = {}

    def train_once(label, config, run_dir):
        if run_dir not in checkpoints:
            iters = iterations_to_train(config, run_dir)
            start = time.time()
            checkpoints[run_dir] = train(config, run_dir, log_dir, progress)
            progress.finished(label, iters, time.time() - start)
        return checkpoints[run_dir]

    labels = {run_dir: label for label, _, run_dir, _ in runs}
    rows = []
    for pair in args.pairs:
        spec = PAIRS[pair]
        teacher_cfg = osp.join(DEMO, spec['teacher'])
        student_cfg = osp.join(DEMO, spec['student'])
        first = Config.fromfile(
            osp.join(REPO, DEMO, next(iter(spec['distillers'].values()))))
        teacher_ckpt = first.model.teacher_ckpt
        teacher_dir = osp.join(args.work_dir, name_of(teacher_cfg))
        if not osp.exists(osp.join(REPO, teacher_ckpt)):
            final = train_once(labels[teacher_dir], teacher_cfg, teacher_dir)
            os.makedirs(osp.dirname(osp.join(REPO, teacher_ckpt)),
                        exist_ok=True)
            shutil.copyfile(osp.join(REPO, final),
                            osp.join(REPO, teacher_ckpt))
        else:
            print(f'teacher checkpoint {teacher_ckpt} exists: not retrained')
        results = dict(teacher=evaluate(teacher_cfg, teacher_ckpt,
                                        teacher_dir, log_dir))
        student_dir = osp.join(args.work_dir, name_of(student_cfg))
        results['student'] = evaluate(
            student_cfg,
            train_once(labels[student_dir], student_cfg, student_dir),
            student_dir, log_dir)
        for method, config in spec['distillers'].items():
            if method not in args.methods:
                continue
            config = osp.join(DEMO, config)
            if method.startswith('sad'):
                prepare_semi_supervised(method, teacher_cfg, teacher_ckpt)
            work_dir = osp.join(args.work_dir, name_of(config))
            ckpt = train_once(labels[work_dir], config, work_dir)
            exported = osp.join(work_dir, 'student_exported.pth')
            run([sys.executable, 'tools/export_student.py', config, ckpt,
                 exported])
            # the exported student is evaluated with the plain student config
            results[method] = evaluate(student_cfg, exported, work_dir,
                                       log_dir)
        print_table(pair, results)
        for model, metrics in results.items():
            rows.append((pair, model, metrics.get('coco/bbox_mAP', 0.0),
                         metrics.get('coco/bbox_mAP_50', 0.0)))

    print('\nCOCO bbox AP on the generated validation split')
    print(f'{"pair":<26} {"model":<12} {"AP":>6} {"AP50":>6}')
    for pair, model, ap, ap50 in rows:
        print(f'{pair:<26} {model:<12} {100 * ap:6.1f} {100 * ap50:6.1f}')
    print(f'total {clock(time.time() - progress.start)}')
    with open(osp.join(REPO, args.work_dir, 'results.json'), 'w') as f:
        json.dump([dict(pair=p, model=m, AP=a, AP50=b)
                   for p, m, a, b in rows], f, indent=2)


if __name__ == '__main__':
    main()
