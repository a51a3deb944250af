"""A multi-seed comparison of distillation methods: which runs there are,
running the missing ones, and the table of paired statistics.

``tools/compare.py`` is the command line; the pieces here are importable
and tested on their own (the runner takes the function that executes one
run, so a test can interrupt and resume a comparison without training).

A run dir is reused only for the settings that made it: ``run.json``
records the config's contents, the ``--cfg-options``, the seed and the
teacher checkpoint's SHA-256 when the run starts, and a later comparison
with other settings is refused (:func:`check_runs`). A run counts as
trained only while its final checkpoint is intact.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import os.path as osp
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Set, Tuple, Union)

from mmengine.config import Config

from ..utils.atomic_write import atomic_open
from ..utils.resume_checkpoint import (checkpoint_problem,
                                       latest_intact_checkpoint)
from .comparison_stats import gap_closed, mean_std, paired_difference
from .run_progress import LogProgress, clock

METRICS_FILE = 'metrics.json'
RUN_RECORD = 'run.json'
#: What defines a run, as ``run.json`` keys, and how a difference is named.
RECORDED = {
    'config_sha256': 'the config',
    'cfg_options': '--cfg-options',
    'seed': 'the seed',
    'teacher': 'the teacher checkpoint',
}
#: Files of a run dir that a comparison reuses.
_RESULTS = re.compile(
    r'^(?:metrics(?:\.\w+)?\.json|last_checkpoint|.*\.pth)$')
#: mmdet's CocoMetric result names (``metric_items``) by default.
_COCO_AP_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
_COCO_AR_ITEMS = ('AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000',
                  'AR_l@1000')


class RunReuseError(ValueError):
    """A run dir holds results made with other settings than the
    comparison's (or says nothing about its settings)."""


class MetricsError(ValueError):
    """A metrics file is damaged, or the metric asked for does not exist."""


@dataclass
class Run:
    """One (config, seed) of a comparison; ``seed`` is ``None`` for the
    teacher, which is only evaluated. A run is done for one split: its
    metrics on val are ``metrics.json``, on another split
    ``metrics.<split>.json`` (the trained checkpoint is shared).

    ``checkpoint`` is the final checkpoint of a trained run (``None``: the
    run is only evaluated); ``record`` is what defines the run
    (:func:`run_record`, written to ``run.json`` when it starts; ``None``:
    nothing is recorded or checked).
    """
    name: str
    config: str
    seed: Optional[int]
    work_dir: str
    role: str = 'method'  # 'student', 'teacher' or 'method'
    split: str = 'val'
    checkpoint: Optional[str] = None
    record: Optional[dict] = None
    #: A digest the config also goes by (:func:`alias_form_sha256`): a run
    #: recorded with it is one of the same config.
    equivalent_sha256: Optional[str] = None

    @property
    def metrics_file(self) -> str:
        name = METRICS_FILE if self.split == 'val' else \
            f'metrics.{self.split}.json'
        return osp.join(self.work_dir, name)

    @property
    def record_file(self) -> str:
        return osp.join(self.work_dir, RUN_RECORD)

    @property
    def checkpoint_problem(self) -> Optional[str]:
        """Why the final checkpoint is not usable (``None``: it is intact,
        or the run has none)."""
        return None if self.checkpoint is None else \
            _checkpoint_problem(self.checkpoint)

    @property
    def trained(self) -> bool:
        """The final checkpoint is intact (a CRC check of the archive)."""
        return self.checkpoint_problem is None

    @property
    def done(self) -> bool:
        """Evaluated on the split and still trained."""
        return osp.isfile(self.metrics_file) and self.trained

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


def _write_json(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, renamed)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with atomic_open(path) as f:
        json.dump(data, f, indent=2)


def write_metrics(run: Run, metrics: Dict[str, float]) -> None:
    """Write a run's metrics atomically: a run counts as done only once its
    file is complete."""
    _write_json(run.metrics_file, metrics)


def read_metrics(run: Run) -> Dict[str, float]:
    """A run's metrics: a JSON object of numbers.

    Raises:
        MetricsError: The file is not valid JSON or not such an object; the
            message names the file and how to evaluate the run again.
    """
    fix = (f'Delete it to evaluate {run.label()} again (the trained '
           'checkpoint is kept).')
    try:
        with open(run.metrics_file) as f:
            metrics = json.load(f)
    except ValueError as error:
        raise MetricsError(f'The metrics file {run.metrics_file} is not '
                           f'valid JSON ({error}). {fix}') from error
    numbers = isinstance(metrics, dict) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool)
        for v in metrics.values())
    if not numbers:
        raise MetricsError(f'The metrics file {run.metrics_file} is not a '
                           'JSON object of metric names and numbers (it '
                           f'holds {json.dumps(metrics)[:200]}). {fix}')
    return metrics


def evaluator_metric_keys(evaluator: Union[dict, list, None]) -> Set[str]:
    """The metric names a test evaluator reports, where they are known
    before evaluating: mmdet's ``CocoMetric`` (its ``metric``,
    ``metric_items`` and ``prefix``; per-class ``classwise`` names are not
    included). Other evaluators give nothing.

    Args:
        evaluator: A ``test_evaluator`` config, or a list of them.
    """
    if isinstance(evaluator, (list, tuple)):
        return set().union(*map(evaluator_metric_keys, evaluator))
    if not evaluator or not str(evaluator.get('type', '')).endswith(
            'CocoMetric'):
        return set()
    prefix = evaluator.get('prefix') or 'coco'
    metrics = evaluator.get('metric', 'bbox')
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    items = evaluator.get('metric_items')
    names = {f'{m}_{item}' for m in metrics if m in ('bbox', 'segm')
             for item in items or _COCO_AP_ITEMS}
    if 'proposal' in metrics:
        names |= set(items or _COCO_AR_ITEMS)
    if 'proposal_fast' in metrics:
        names |= {f'AR@{n}' for n in evaluator.get('proposal_nums',
                                                   (100, 300, 1000))}
    return {f'{prefix}/{name}' for name in names}


def check_metric(metric: str, available: Iterable[str]) -> None:
    """Refuse a metric that is not among ``available``.

    Raises:
        MetricsError: Listing the available metric names.
    """
    available = sorted(available)
    if metric in available:
        return
    listed = ', '.join(f'`{k}`' for k in available) or (
        'none: no run reported a metric (every model detected nothing?) '
        "and the evaluator's metric names are not known")
    raise MetricsError(f'--metric `{metric}` is not a metric of this '
                       f'comparison. The metric names available are: '
                       f'{listed}. Pass one of them as --metric.')


def finished_metrics(runs: Sequence[Run]) -> Dict[str, Dict[str, float]]:
    """Each done run's metrics, by its metrics file."""
    return {r.metrics_file: read_metrics(r) for r in runs if r.done}


@functools.lru_cache(maxsize=None)
def _checkpoint_problem_of(path: str, size: int, mtime_ns: int
                           ) -> Optional[str]:
    return checkpoint_problem(path)


def _checkpoint_problem(path: str) -> Optional[str]:
    """:func:`checkpoint_problem`, read once per version of the file."""
    if not osp.isfile(path):
        return checkpoint_problem(path)
    stat = os.stat(path)
    return _checkpoint_problem_of(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(functools.partial(f.read, 1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """The SHA-256 of a file, read in blocks once per version of it."""
    stat = os.stat(path)
    return _sha256_of(osp.realpath(path), stat.st_size, stat.st_mtime_ns)


def _local_file(path: Any, root: str) -> Optional[str]:
    """``path`` as an existing local file (relative ones from ``root``, the
    directory the tools run in), or ``None``."""
    if not isinstance(path, str) or '::' in path or '://' in path:
        return None
    full = osp.join(root, path)
    return full if osp.isfile(full) else None


def config_sha256(config: str, model: dict, root: str,
                  load: Callable[[str], Config] = Config.fromfile,
                  as_alias: bool = False) -> Optional[str]:
    """The SHA-256 of a config as its files define it.

    The config is resolved (its ``_base_`` files merged) and dumped as JSON;
    the student and teacher a distiller names by config file (after the
    options: ``model``) are resolved and put in place of their paths, so an
    edit of the student's config counts and moving the repository does not.

    Args:
        config: The config file.
        model: The run's ``model`` config, options merged.
        root: The directory relative paths are read from.
        load: Reads a config file (e.g. a cached ``Config.fromfile``).
        as_alias: Hash the config as its one-method alias would write it
            (:func:`alias_form_sha256`); ``None`` when it has none.
    """
    resolved = load(config).to_dict()
    if as_alias:
        resolved['model'] = _alias_form(resolved.get('model') or {})
        if resolved['model'] is None:
            return None
    files = {key: _local_file(model.get(key), root)
             for key in ('student', 'teacher')}
    named = {key: load(path).to_dict().get('model')
             for key, path in files.items() if path}
    resolved['model'] = {**(resolved.get('model') or {}), **named}
    text = json.dumps(resolved, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _alias_form(model: dict) -> Optional[dict]:
    """A one-method ``Distiller`` model config as its one-method alias of
    sea_kd 0.1 wrote it (``type='SEADistiller', loss_sea=...``), or
    ``None`` when it is not one."""
    from ..models.distillers.single_method_distillers import ALIAS_OF_METHOD
    methods = model.get('methods')
    if model.get('type') != 'Distiller' or not isinstance(methods, list) \
            or len(methods) != 1 or not isinstance(methods[0], dict):
        return None
    alias = ALIAS_OF_METHOD.get(methods[0].get('type'))
    if alias is None:
        return None
    options = {k: v for k, v in methods[0].items() if k != 'type'}
    if set(options) & set(model):
        return None  # not expressible as one flat alias config
    rest = {k: v for k, v in model.items() if k not in ('type', 'methods')}
    return dict(rest, type=alias, **options)


def alias_form_sha256(config: str, model: dict, root: str,
                      load: Callable[[str], Config] = Config.fromfile
                      ) -> Optional[str]:
    """The :func:`config_sha256` the same config had when it was written
    as a one-method alias (``SEADistiller``, ...), or ``None``: runs made
    before the shipped configs moved to ``Distiller(methods=[...])`` are
    runs of the same config, and are reused."""
    return config_sha256(config, model, root, load, as_alias=True)


def run_record(config: str, config_digest: str, cfg_options: dict,
               seed: Optional[int], teacher_ckpt: Optional[str],
               root: str) -> dict:
    """What defines a run, as written to its ``run.json``.

    Args:
        config: The config file (kept for messages).
        config_digest: :func:`config_sha256` of it.
        cfg_options: The options given for every run (not the seed or the
            teacher checkpoint, recorded on their own).
        seed: ``randomness.seed``; ``None`` for the teacher.
        teacher_ckpt: The teacher checkpoint the run reads, or ``None``.
        root: The directory a relative ``teacher_ckpt`` is read from.

    Returns:
        ``dict(config, config_sha256, cfg_options, seed, teacher_checkpoint,
        teacher)``; ``teacher`` is the checkpoint's SHA-256, or its path
        where it is not a local file.
    """
    local = _local_file(teacher_ckpt, root)
    return dict(
        config=config, config_sha256=config_digest,
        cfg_options=json.loads(json.dumps(cfg_options, sort_keys=True,
                                          default=repr)),
        seed=seed, teacher_checkpoint=teacher_ckpt,
        teacher=file_sha256(local) if local else teacher_ckpt)


def has_results(work_dir: str) -> bool:
    """Whether a run dir holds something a comparison would reuse: metrics,
    checkpoints or ``last_checkpoint``."""
    return osp.isdir(work_dir) and any(
        _RESULTS.match(name) for name in os.listdir(work_dir))


def _describe(key: str, recorded: dict, now: dict) -> str:
    """How the value of ``key`` in two run records differs, in words."""
    was, new = recorded.get(key), now.get(key)
    if key == 'cfg_options':
        was, new = was or {}, new or {}
        changed = sorted(k for k in {**was, **new}
                         if k not in was or k not in new or was[k] != new[k])
        return '--cfg-options differ: ' + '; '.join(
            f'`{k}` was {_shown(was, k)}, now {_shown(new, k)}'
            for k in changed)
    if key == 'config_sha256':
        moved = recorded.get('config') != now.get('config')
        return (f'the config differs: `{now.get("config")}` (with its '
                '_base_ files and the student/teacher configs it names) '
                f'resolves to sha256 {str(new)[:12]}…, the run was made '
                f'from {str(was)[:12]}…' +
                (f' (`{recorded.get("config")}`)' if moved else ''))
    if key == 'teacher':
        return (f'the teacher checkpoint differs: now '
                f'`{now.get("teacher_checkpoint")}` (sha256 '
                f'{str(new)[:12]}…), recorded '
                f'`{recorded.get("teacher_checkpoint")}` (sha256 '
                f'{str(was)[:12]}…)')
    return f'{RECORDED[key]} differs: recorded {was!r}, now {new!r}'


def _shown(options: dict, key: str) -> str:
    return f'`{options[key]!r}`' if key in options else 'not set'


def record_problem(run: Run) -> Optional[str]:
    """Why ``run``'s dir cannot be reused for ``run.record`` (``None``: it
    can, or it holds nothing to reuse and is simply started again)."""
    if run.record is None or not has_results(run.work_dir):
        return None
    if not osp.isfile(run.record_file):
        return (f'it has results but no {RUN_RECORD} saying which settings '
                'made them (written by an older tools/compare.py?); if they '
                "were made with this command's settings, record them with "
                '--adopt-unrecorded')
    try:
        with open(run.record_file) as f:
            recorded = json.load(f)
    except ValueError as error:
        return f'its {run.record_file} is damaged ({error})'
    if not isinstance(recorded, dict):
        return f'its {run.record_file} is not a JSON object'
    differ = [_describe(key, recorded, run.record) for key in RECORDED
              if recorded.get(key) != run.record.get(key) and not (
                  key == 'config_sha256' and run.equivalent_sha256 and
                  recorded.get(key) == run.equivalent_sha256)]
    return '; '.join(differ) or None


def check_runs(runs: Sequence[Run]) -> None:
    """Refuse to reuse run dirs made with other settings.

    Raises:
        RunReuseError: Naming each such run dir, what differs, and the fix.
    """
    problems = {r.work_dir: record_problem(r) for r in runs}
    problems = {d: p for d, p in problems.items() if p}
    if not problems:
        return
    lines = '\n'.join(f'  {d}: {p}' for d, p in problems.items())
    raise RunReuseError(
        f'{len(problems)} run dir(s) hold results made with other settings '
        f'than this command\'s:\n{lines}\nA run is reused only with the '
        'config, --cfg-options, seed and teacher checkpoint it was made '
        'with (see its run.json). Give this command a new --work-dir, or '
        'delete the run dirs listed to train them again.')


def adopt_unrecorded(runs: Sequence[Run]) -> List[Run]:
    """Record the settings of ``runs`` for those run dirs that have results
    but no ``run.json`` (made before runs were recorded), trusting that the
    same settings made them; return those runs."""
    adopted = [r for r in runs if r.record is not None
               and has_results(r.work_dir) and not osp.isfile(r.record_file)]
    for run in adopted:
        write_record(run)
    return adopted


def write_record(run: Run) -> None:
    """Write ``run.record`` to the run's ``run.json`` (when it starts)."""
    if run.record is not None:
        _write_json(run.record_file, run.record)


def resume_point(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The checkpoint an unfinished run continues from, with notes
    (:func:`sea_kd.utils.latest_intact_checkpoint`: a ``last_checkpoint``
    that names a file outside the run dir, as in a copied work dir, is
    passed over, and so are damaged checkpoints).

    Args:
        work_dir: The run dir.

    Returns:
        ``(path, notes)``: ``path`` is ``None`` to start afresh; ``notes``
        say which checkpoints were passed over and why, and the outcome.
    """
    path, skipped = latest_intact_checkpoint(work_dir)
    notes = [f'not resuming from `{bad}`: {why}' for bad, why in skipped]
    if notes:
        notes.append(f'resuming from `{path}`' if path else 'starting afresh')
    return path, notes


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
                f'({clock(seconds)}); elapsed {clock(elapsed)}, '
                f'about {clock(eta)} left')

    def overall_left(self, state: Optional[LogProgress],
                     elapsed: float) -> Optional[float]:
        """Seconds left for every run, while one is in flight: its own time
        left (mmengine's ``eta`` in its log) plus the mean duration of a
        finished run for each run not started; before any run finished,
        this run's projected training time stands for the mean. ``None``
        while nothing gives an estimate (e.g. the first run's evaluation).

        Args:
            state: The stage's last progress line (:func:`read_progress`).
            elapsed: Seconds the stage's process has been going.
        """
        jobs = max(self.jobs, 1)
        after = max(self.total - self.done - jobs, 0)
        own = state.eta if state is not None else None
        if self.durations:
            mean = sum(self.durations) / len(self.durations)
        elif own is not None and state.stage == 'train':
            mean = elapsed + own
        else:
            return None
        if own is None:
            own = max(mean - elapsed, 0.0)
        return own + mean * after / jobs


def run_comparison(runs: Sequence[Run],
                   execute: Callable[[Run, int], Dict[str, float]],
                   jobs: int = 1,
                   log: Callable[[str], None] = print,
                   progress: Optional[Progress] = None) -> None:
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
        progress: The counter whose :meth:`Progress.overall_left` the
            executor may report while a run is in flight (``None``: a new
            one); its ``total`` and ``jobs`` are set here.

    Raises:
        RunReuseError: Before anything runs, when a run dir holds results
            made with other settings (:func:`check_runs`).
    """
    check_runs(runs)
    for run in runs:
        if osp.isfile(run.metrics_file) and not run.trained:
            log(f'{run.label()}: {run.metrics_file} exists, but the final '
                f'checkpoint {run.checkpoint} is not usable '
                f'({run.checkpoint_problem}); training it again')
    todo = [r for r in runs if not r.done]
    skipped = len(runs) - len(todo)
    if skipped:
        log(f'{skipped} of {len(runs)} runs already finished; '
            f'{len(todo)} to go')
    if progress is None:
        progress = Progress(total=len(todo), jobs=jobs)
    progress.total, progress.jobs = len(todo), jobs
    free = list(range(jobs))
    lock = threading.Lock()

    def one(run: Run) -> None:
        with lock:
            slot = free.pop()
        try:
            started = time.monotonic()
            write_record(run)
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
              fi_name: Optional[str] = None,
              metric_keys: Iterable[str] = (),
              pairs: Sequence[Tuple[str, str]] = ()) -> dict:
    """The comparison table from the finished runs (AP in %).

    A run whose evaluation reported no metric at all (mmdet's
    ``CocoMetric`` when the model detected nothing) counts as AP 0, for a
    metric that another run reports or that is in ``metric_keys``.

    Args:
        runs: From :func:`plan_runs`.
        metric: The metric of the table.
        fi_name: The second baseline's config name.
        metric_keys: Metric names the evaluator reports
            (:func:`evaluator_metric_keys`).
        pairs: Further paired comparisons, ``(config, baseline)`` config
            names (e.g. a method with balancing against the same method
            without).

    Raises:
        MetricsError: ``metric`` is not available (the message lists those
            that are), or a metrics file is damaged or lacks it (the message
            names the file).

    Returns:
        ``dict(metric, teacher, student, fi, methods=[row, ...])``; a row
        has ``name``, ``seeds``, ``ap`` (by seed), ``mean``, ``std``,
        ``vs_student`` and ``vs_fi`` (:func:`paired_difference`, or
        ``None``) and ``gap_closed``; ``pairs``: ``[dict(config, baseline,
        diff), ...]``.

    Raises (also):
        ValueError: A name in ``pairs`` is not a config of the comparison.
    """
    finished = finished_metrics(runs)
    check_metric(metric, set(metric_keys).union(*finished.values()))
    by_name: Dict[str, Dict[int, float]] = {}
    teacher_ap = None
    roles: Dict[str, str] = {}
    for run in runs:
        if not run.done:
            continue
        # CocoMetric reports nothing when a model detects nothing
        metrics = finished[run.metrics_file] or {metric: 0.0}
        if metric not in metrics:
            raise MetricsError(
                f'The metrics file {run.metrics_file} has no `{metric}`; it '
                f'has {sorted(metrics)}. Delete it to evaluate '
                f'{run.label()} again.')
        value = 100.0 * float(metrics[metric])
        if run.role == 'teacher':
            teacher_ap = value
        else:
            by_name.setdefault(run.name, {})[run.seed] = value
            roles[run.name] = run.role
    return summary_of(by_name, roles, metric=metric, teacher_ap=teacher_ap,
                      fi_name=fi_name, pairs=pairs)


def summary_of(by_name: Mapping[str, Mapping[int, float]],
               roles: Mapping[str, str], metric: str = 'coco/bbox_mAP',
               teacher_ap: Optional[float] = None,
               fi_name: Optional[str] = None,
               pairs: Sequence[Tuple[str, str]] = ()) -> dict:
    """The comparison table from each config's AP by seed (in %); what
    :func:`summarize` returns for finished runs, and how a figure's data is
    rebuilt from a published table's per-seed values.

    Args:
        by_name: AP (%) by seed, by config name.
        roles: ``'student'`` or ``'method'`` by config name.
        metric: The metric of the table.
        teacher_ap: The teacher's AP (%), or ``None``.
        fi_name: The second baseline's config name.
        pairs: Further paired comparisons, ``(config, baseline)`` names.

    Raises:
        ValueError: A name in ``pairs`` is not a config of the comparison.

    Returns:
        As :func:`summarize`.
    """
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
    unknown = sorted({n for pair in pairs for n in pair} - set(by_name))
    if unknown:
        raise ValueError(f'--pairs names {unknown}, which are not configs of '
                         f'this comparison ({sorted(by_name)}).')
    return dict(metric=metric, teacher=teacher_ap, student=student,
                fi=fi_name if fi_name in by_name else None, methods=rows,
                pairs=[dict(config=a, baseline=b,
                            diff=paired_difference(by_name[a], by_name[b]))
                       for a, b in pairs])


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
    if summary.get('pairs'):
        lines += ['', '| config | baseline | Δ [95% CI] | wins |',
                  '| --- | --- | --- | --- |']
        lines += [f'| `{p["config"]}` | `{p["baseline"]}` | '
                  f'{_diff_cell(p["diff"])} | {_wins_cell(p["diff"])} |'
                  for p in summary['pairs']]
    return '\n'.join(lines) + '\n'
