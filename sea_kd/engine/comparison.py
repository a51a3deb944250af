"""A multi-seed comparison of distillation methods: which runs there are,
running the missing ones, and the table of paired statistics.

``tools/compare.py`` is the command line; the pieces here are importable
and tested on their own (the runner takes the function that executes one
run, so a test can interrupt and resume a comparison without training).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from .comparison_stats import gap_closed, mean_std, paired_difference

METRICS_FILE = 'metrics.json'


@dataclass
class Run:
    """One (config, seed) of a comparison; ``seed`` is ``None`` for the
    teacher, which is only evaluated. A run is done for one split: its
    metrics on val are ``metrics.json``, on another split
    ``metrics.<split>.json`` (the trained checkpoint is shared)."""
    name: str
    config: str
    seed: Optional[int]
    work_dir: str
    role: str = 'method'  # 'student', 'teacher' or 'method'
    split: str = 'val'

    @property
    def metrics_file(self) -> str:
        name = METRICS_FILE if self.split == 'val' else \
            f'metrics.{self.split}.json'
        return osp.join(self.work_dir, name)

    @property
    def done(self) -> bool:
        return osp.isfile(self.metrics_file)

    def label(self) -> str:
        return self.name if self.seed is None else \
            f'{self.name} seed {self.seed}'


def parse_seeds(text: str) -> List[int]:
    """``'0-4'`` → 0..4, ``'0,3,7'`` → those, ``'5'`` → [5]."""
    seeds: List[int] = []
    for part in text.split(','):
        part = part.strip()
        if '-' in part[1:]:
            low, high = part.split('-', 1)
            if int(high) < int(low):
                raise ValueError(f'empty seed range {part!r}')
            seeds.extend(range(int(low), int(high) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'seeds {text!r} must name distinct seeds')
    return seeds


def config_name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def plan_runs(work_dir: str, student: str, methods: Sequence[str],
              seeds: Sequence[int], teacher: Optional[str] = None,
              split: str = 'val') -> List[Run]:
    """Every run of a comparison on ``split``, the student's first for each
    seed."""
    runs = []
    if teacher is not None:
        runs.append(Run(config_name(teacher), teacher, None,
                        osp.join(work_dir, config_name(teacher)),
                        'teacher', split))
    names = [config_name(c) for c in (student, *methods)]
    if len(set(names)) != len(names):
        raise ValueError(f'config names must be distinct, got {names}')
    for seed in seeds:
        for config, role in [(student, 'student')] + [(m, 'method')
                                                      for m in methods]:
            name = config_name(config)
            runs.append(Run(name, config, seed,
                            osp.join(work_dir, name, f'seed{seed}'), role,
                            split))
    return runs


def write_metrics(run: Run, metrics: Dict[str, float]) -> None:
    """Write a run's metrics atomically: a run counts as done only once its
    file is complete."""
    os.makedirs(run.work_dir, exist_ok=True)
    tmp = run.metrics_file + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(metrics, f, indent=2)
    os.replace(tmp, run.metrics_file)


def read_metrics(run: Run) -> Dict[str, float]:
    with open(run.metrics_file) as f:
        return json.load(f)


@dataclass
class Progress:
    """Runs done of total, elapsed time and an estimate of the time left."""
    total: int
    jobs: int
    done: int = 0
    durations: List[float] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)

    def line(self, run: Run, seconds: float, note: str) -> str:
        self.done += 1
        self.durations.append(seconds)
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        mean = sum(self.durations) / len(self.durations)
        eta = mean * left / max(self.jobs, 1)
        return (f'[{self.done}/{self.total}] {run.label()}: {note} '
                f'({_clock(seconds)}); elapsed {_clock(elapsed)}, '
                f'about {_clock(eta)} left')


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


def run_comparison(runs: Sequence[Run],
                   execute: Callable[[Run, int], Dict[str, float]],
                   jobs: int = 1,
                   log: Callable[[str], None] = print) -> None:
    """Execute every run not done yet, ``jobs`` at a time.

    ``execute(run, slot)`` trains and evaluates one run and returns its
    metrics; ``slot`` (``0..jobs-1``) tells it which device to use. A run's
    metrics are written only when it finished, so an interrupted comparison
    continues with the missing runs. The teacher (evaluated only) goes
    first. The first failing run stops the comparison, after the runs in
    flight have finished.

    Args:
        runs: From :func:`plan_runs`.
        execute: Runs one (config, seed).
        jobs: Runs in parallel.
        log: Where progress lines go.
    """
    todo = [r for r in runs if not r.done]
    skipped = len(runs) - len(todo)
    if skipped:
        log(f'{skipped} of {len(runs)} runs already finished; '
            f'{len(todo)} to go')
    progress = Progress(total=len(todo), jobs=jobs)
    free = list(range(jobs))
    lock = threading.Lock()

    def one(run: Run) -> None:
        with lock:
            slot = free.pop()
        try:
            started = time.monotonic()
            metrics = execute(run, slot)
            write_metrics(run, metrics)
            note = ', '.join(f'{k.split("/")[-1]} {100 * v:.1f}'
                             for k, v in metrics.items()
                             if k.endswith('bbox_mAP'))
            with lock:
                log(progress.line(run, time.monotonic() - started,
                                  note or 'done'))
        finally:
            with lock:
                free.append(slot)

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        futures = [pool.submit(one, r) for r in todo]
        errors = []
        for future in as_completed(futures):
            if future.cancelled():
                continue
            if future.exception() is not None:
                errors.append(future.exception())
                for other in futures:
                    other.cancel()
    if errors:
        raise errors[0]


def summarize(runs: Sequence[Run], metric: str = 'coco/bbox_mAP',
              fi_name: Optional[str] = None) -> dict:
    """The comparison table from the finished runs (AP in %).

    A run whose evaluation reported no metric at all (mmdet's
    ``CocoMetric`` when the model detected nothing) counts as AP 0.

    Returns:
        ``dict(metric, teacher, student, fi, methods=[row, ...])``; a row
        has ``name``, ``seeds``, ``ap`` (by seed), ``mean``, ``std``,
        ``vs_student`` and ``vs_fi`` (:func:`paired_difference`, or
        ``None``) and ``gap_closed``.
    """
    by_name: Dict[str, Dict[int, float]] = {}
    teacher_ap = None
    roles: Dict[str, str] = {}
    for run in runs:
        if not run.done:
            continue
        metrics = read_metrics(run)
        if not metrics:
            # CocoMetric reports nothing when a model detects nothing
            metrics = {metric: 0.0}
        if metric not in metrics:
            raise KeyError(f'{run.metrics_file} has no {metric!r}; it has '
                           f'{sorted(metrics)}')
        value = 100.0 * float(metrics[metric])
        if run.role == 'teacher':
            teacher_ap = value
        else:
            by_name.setdefault(run.name, {})[run.seed] = value
            roles[run.name] = run.role
    student = next((n for n, r in roles.items() if r == 'student'), None)
    rows = []
    for name, aps in by_name.items():
        stats = mean_std(list(aps.values()))
        row = dict(name=name, role=roles[name], seeds=sorted(aps),
                   ap={str(s): aps[s] for s in sorted(aps)},
                   mean=stats['mean'], std=stats['std'])
        row['vs_student'] = paired_difference(aps, by_name[student]) \
            if student and name != student else None
        row['vs_fi'] = paired_difference(aps, by_name[fi_name]) \
            if fi_name in by_name and name not in (fi_name, student) \
            else None
        row['gap_closed'] = None
        if student and teacher_ap is not None:
            row['gap_closed'] = gap_closed(stats['mean'],
                                           mean_std(list(
                                               by_name[student].values()))
                                           ['mean'], teacher_ap)
        rows.append(row)
    return dict(metric=metric, teacher=teacher_ap, student=student,
                fi=fi_name if fi_name in by_name else None, methods=rows)


def _diff_cell(diff: Optional[dict]) -> str:
    if diff is None:
        return '—'
    text = f'{diff["mean"]:+.1f}'
    if diff['ci_low'] is not None:
        text += f' [{diff["ci_low"]:+.1f}, {diff["ci_high"]:+.1f}]'
    return text


def _wins_cell(diff: Optional[dict]) -> str:
    return '—' if diff is None else f'{diff["wins"]}/{diff["n"]}'


def format_markdown(summary: dict) -> str:
    """The table as markdown: one row per config, AP in %.

    The second baseline's column is headed ``summary['baseline_label']``
    (default ``'FI'``).
    """
    teacher = summary['teacher']
    label = summary.get('baseline_label') or 'FI'
    lines = [
        f'metric: `{summary["metric"]}` (%); teacher: '
        + ('not evaluated' if teacher is None else f'{teacher:.1f}'), '',
        '| config | AP mean ± std (n) | Δ vs student [95% CI] | wins | '
        f'Δ vs {label} [95% CI] | wins | gap closed |',
        '| --- | --- | --- | --- | --- | --- | --- |'
    ]
    for row in summary['methods']:
        gap = row['gap_closed']
        lines.append(
            f'| `{row["name"]}` | {row["mean"]:.1f} ± {row["std"]:.1f} '
            f'({len(row["seeds"])}) | {_diff_cell(row["vs_student"])} | '
            f'{_wins_cell(row["vs_student"])} | {_diff_cell(row["vs_fi"])} '
            f'| {_wins_cell(row["vs_fi"])} | '
            + ('—' if gap is None else f'{100 * gap:.0f}%') + ' |')
    return '\n'.join(lines) + '\n'


def plot_comparison(summary: dict, out_file: str) -> None:
    """Each seed's AP as a dot, the mean with its 95 % interval as a bar."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from .comparison_stats import t_quantile_975
    rows = summary['methods']
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.5))
    for x, row in enumerate(rows):
        values = list(row['ap'].values())
        ax.scatter([x] * len(values), values, s=14, color='0.55', zorder=2)
        n = len(values)
        half = t_quantile_975(n - 1) * row['std'] / n**0.5 if n > 1 else 0
        ax.errorbar(x, row['mean'], yerr=half, fmt='o', color='C0',
                    capsize=4, zorder=3)
    if summary['teacher'] is not None:
        ax.axhline(summary['teacher'], color='C3', ls='--', lw=1,
                   label='teacher')
        ax.legend(loc='best', fontsize=8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r['name'] for r in rows], rotation=20, ha='right',
                       fontsize=7)
    ax.set_ylabel(f'{summary["metric"]} (%)')
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
