"""Read mmengine's scalar logs of training runs and chart them.

mmengine's ``LocalVisBackend`` (the visualizer of mmdet's default runtime)
writes ``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object a
line. A training line has ``iter`` (the global iteration), ``step``, ``lr``,
``loss`` and every ``loss_*`` term (``epoch`` too when the ``LogProcessor``
logs by epoch); a validation line has the metrics (``coco/bbox_mAP``, ...)
and ``step``.

Where a validation point lies: with ``LoggerHook(log_metric_by_epoch=False)``
its ``step`` is the iteration; with the default ``log_metric_by_epoch=True``
it is the epoch count, which an ``IterBasedTrainLoop`` leaves at 0. So in an
iteration-based run a validation point lies at its ``step`` when that is not
below the iteration of the training line logged just before it, and at that
iteration otherwise: exact when the validation interval is a multiple of the
logger interval (as in mmdet's and sea_kd's configs), at most one logger
interval early otherwise. In an epoch-based run it lies at the epoch of the
training line logged just before it (the epoch that validation followed).

A work dir with several timestamp dirs (a resumed run, or a second run into
the same dir) is read in time order and merged: where a later session starts
at or before an iteration an earlier one had logged, the later session
replaces the earlier one from there on. A resumed run therefore continues
its first part, and a fresh run into an old work dir replaces it. Timestamp
dirs without ``vis_data/scalars.json`` (``tools/test.py`` runs) are skipped.

Loss curves are drawn against the global iteration, which every training
line records. The metric chart uses iterations for iteration-based runs and
epochs for epoch-based ones.

matplotlib (a dependency of mmdet) is imported only by the plot functions,
which draw on a :class:`matplotlib.figure.Figure` and so never change the
pyplot backend of the calling program.
"""
from __future__ import annotations

import glob
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

#: keys of a training line that position it rather than measure something
POSITION_KEYS = ('iter', 'step', 'epoch')
#: scalar file that mmengine's LocalVisBackend writes for each session
SCALARS_FILE = 'scalars.json'

Series = Tuple[List[float], List[float]]


def find_scalar_files(path: str) -> List[str]:
    """The ``scalars.json`` files of a run, oldest session first.

    Args:
        path: A work dir (holding ``<timestamp>/vis_data/scalars.json``), a
            timestamp dir, a ``vis_data`` dir, or a scalar file itself
            (``scalars.json`` or ``vis_data/<timestamp>.json``).

    Returns:
        list[str]: The files, sorted by their timestamp dir (mmengine names
        them ``YYYYMMDD_HHMMSS``, so the name order is the time order).

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no scalar file.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'`{path}` does not exist. Give a work dir, '
                                'a timestamp dir or a scalars.json file.')
    for candidate in (osp.join(path, SCALARS_FILE),
                      osp.join(path, 'vis_data', SCALARS_FILE)):
        if osp.isfile(candidate):
            return [candidate]
    files = glob.glob(osp.join(path, '*', 'vis_data', SCALARS_FILE))
    if not files:
        raise FileNotFoundError(
            f'No scalars.json under `{path}`: mmengine writes one per '
            'training session at <work_dir>/<timestamp>/vis_data/'
            "scalars.json when the visualizer has a LocalVisBackend (mmdet's "
            'default runtime has one). Give the work dir of a training run, '
            'one of its timestamp dirs, or the file itself.')
    return sorted(files, key=lambda f: osp.basename(
        osp.dirname(osp.dirname(f))))


def run_name(path: str) -> str:
    """The default label of a run: the name of its work dir.

    ``work_dirs/ret_tbd_s1``, ``work_dirs/ret_tbd_s1/20261121_085539`` and
    ``.../20261121_085539/vis_data/scalars.json`` are all ``ret_tbd_s1``.
    """
    path = osp.abspath(path)
    if osp.isfile(path):
        path = osp.dirname(path)
    if osp.basename(path) == 'vis_data':
        path = osp.dirname(path)
    if osp.isfile(osp.join(path, 'vis_data', SCALARS_FILE)):
        path = osp.dirname(path)
    return osp.basename(path)


def _read_lines(file: str) -> List[dict]:
    records = []
    with open(file) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'Line {number} of `{file}` is not JSON '
                                 f'({err}); an mmengine scalar file holds '
                                 'one JSON object a line.') from err
            if not isinstance(record, dict):
                raise ValueError(f'Line {number} of `{file}` is not a JSON '
                                 'object.')
            if 'iter' not in record and 'step' not in record:
                raise ValueError(
                    f'Line {number} of `{file}` has neither `iter` nor '
                    '`step`, so it is not a line of a training log (the '
                    'metrics json that tools/test.py writes looks like '
                    "this); give the training run's "
                    '<timestamp>/vis_data/scalars.json.')
            records.append(record)
    return records


def _parse_session(file: str) -> dict:
    """One session's scalars, validation points already positioned."""
    train: List[Tuple[int, Optional[int], dict]] = []
    val: List[Tuple[float, dict]] = []
    by_epoch = None
    for record in _read_lines(file):
        values = {
            k: float(v) for k, v in record.items()
            if k not in POSITION_KEYS and isinstance(v, (int, float))
            and not isinstance(v, bool)
        }
        if 'iter' in record:
            epoch = record.get('epoch')
            by_epoch = epoch is not None
            train.append((int(record['iter']), epoch, values))
            continue
        step = record['step']
        if not train:
            x = step
        elif by_epoch:
            # the epoch just finished; `step` is it, or an iteration
            # under log_metric_by_epoch=False
            x = train[-1][1]
        else:
            # `step` is the iteration, or the epoch count (0) under the
            # default log_metric_by_epoch=True
            x = max(step, train[-1][0])
        val.append((float(x), values))
    return dict(train=train, val=val, by_epoch=by_epoch)


def _series(points: Sequence[Tuple[float, dict]]) -> Dict[str, Series]:
    out: Dict[str, Series] = {}
    for x, values in points:
        for key, value in values.items():
            xs, ys = out.setdefault(key, ([], []))
            xs.append(x)
            ys.append(value)
    return out


def load_scalars(path: str) -> dict:
    """Read a run's training and validation scalars.

    Args:
        path: See :func:`find_scalar_files`.

    Returns:
        dict: ``name`` (the work dir name), ``files`` (the scalar files read,
        oldest first), ``by_epoch`` (True when the training log is by epoch,
        None when it has no training line), ``val_unit`` (``'epoch'``,
        ``'iter'`` or ``'step'`` when there is no training line to tell),
        ``train`` and ``val``: ``{key: (xs, ys)}`` with ``xs`` the global
        iteration for ``train`` and ``val_unit`` values for ``val``. Every
        numeric key is kept (``lr``, ``time``, ``grad_norm``, ... too).

    Raises:
        FileNotFoundError: No scalar file (see :func:`find_scalar_files`).
        ValueError: A line is not a JSON object of a training log, or the
            sessions mix epoch- and iteration-based logs.
    """
    files = find_scalar_files(path)
    train: List[Tuple[int, Optional[int], dict]] = []
    val: List[Tuple[float, dict]] = []
    by_epoch = None
    for file in files:
        session = _parse_session(file)
        if session['by_epoch'] is not None:
            if by_epoch is not None and by_epoch != session['by_epoch']:
                unit = 'epoch' if session['by_epoch'] else 'iteration'
                raise ValueError(
                    f'`{file}` logs by {unit} but an earlier session of '
                    f'`{path}` did not; plot the sessions separately by '
                    'giving their timestamp dirs.')
            by_epoch = session['by_epoch']
        if session['train']:
            first_iter, first_epoch, _ = session['train'][0]
            train = [t for t in train if t[0] < first_iter]
            if by_epoch:
                val = [v for v in val if v[0] < first_epoch]
            else:
                val = [v for v in val if v[0] < first_iter]
        train.extend(session['train'])
        val.extend(session['val'])
    if by_epoch is None:
        val_unit = 'step'
    else:
        val_unit = 'epoch' if by_epoch else 'iter'
    return dict(
        name=run_name(path),
        files=files,
        by_epoch=by_epoch,
        val_unit=val_unit,
        train=_series([(it, values) for it, _, values in train]),
        val=_series(val))


def loss_keys(runs: Sequence[dict]) -> List[str]:
    """``loss``, every ``loss_*`` key and the balancing's
    ``balance_factor_*`` / ``balance_share_*`` of the runs, in first-seen
    order."""
    keys: List[str] = []
    for run in runs:
        for key in run['train']:
            if (key == 'loss' or key.startswith(('loss_', 'balance_'))) \
                    and key not in keys:
                keys.append(key)
    return keys


def moving_average(values: Sequence[float], window: int) -> List[float]:
    """Trailing moving average; the first points average what exists.

    ``out[i] = mean(values[max(0, i - window + 1) : i + 1])``, so the output
    has the length of the input and ``window=1`` returns it unchanged.
    """
    if window < 1:
        raise ValueError(f'The smoothing window must be >= 1, got {window}.')
    out = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _labels(runs: Sequence[dict], labels: Optional[Sequence[str]]):
    if labels is None:
        return [run['name'] for run in runs]
    if len(labels) != len(runs):
        raise ValueError(f'{len(labels)} labels for {len(runs)} runs: give '
                         'one label per run, in the order of the runs.')
    return list(labels)


def _colours(labels: Sequence[str]) -> Dict[str, tuple]:
    from matplotlib import colormaps
    cmap = colormaps['tab10']
    unique = list(dict.fromkeys(labels))
    return {label: cmap(i % 10) for i, label in enumerate(unique)}


def _save(fig, out: str, dpi: int) -> str:
    directory = osp.dirname(osp.abspath(out))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def plot_losses(runs: Sequence[dict],
                out: str,
                keys: Optional[Sequence[str]] = None,
                labels: Optional[Sequence[str]] = None,
                smooth: int = 1,
                dpi: int = 100,
                title: Optional[str] = None) -> str:
    """One subplot per training scalar, every run overlaid.

    Args:
        runs: Results of :func:`load_scalars`.
        out: The PNG file to write.
        keys: Training scalars to draw; default :func:`loss_keys` (``loss``
            and every ``loss_*`` term of any run).
        labels: Legend names, one per run; default the run names. Runs that
            share a label share a colour and one legend entry.
        smooth: Window of the trailing moving average (1: none).
        dpi: Resolution of the PNG.
        title: Figure title.

    Returns:
        str: ``out``.

    Raises:
        ValueError: A key is in no run (the message lists those there are),
            or no run has a loss key.
    """
    labels = _labels(runs, labels)
    available = list(dict.fromkeys(k for run in runs for k in run['train']))
    if keys is None:
        keys = loss_keys(runs)
        if not keys:
            raise ValueError(
                'No run has a training loss (`loss` or `loss_*`); training '
                f'scalars there are: {", ".join(available) or "none"}.')
    missing = [k for k in keys if k not in available]
    if missing:
        raise ValueError(
            f'Training scalar(s) {", ".join(missing)} are in none of the '
            f'runs; available: {", ".join(available) or "none"}.')
    from matplotlib.figure import Figure
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.7 * nrows), layout='constrained')
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    colours = _colours(labels)
    for ax, key in zip(axes.flat, keys):
        seen = set()
        for run, label in zip(runs, labels):
            if key not in run['train']:
                continue
            xs, ys = run['train'][key]
            ax.plot(xs, moving_average(ys, smooth), color=colours[label],
                    linewidth=1.2,
                    label=None if label in seen else label)
            seen.add(label)
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for i, ax in enumerate(axes.flat):
        if i >= len(keys):
            ax.set_visible(False)
        elif i + ncols >= len(keys):  # nothing drawn below it
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel('iteration', fontsize=9)
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    axes.flat[0].legend(handles.values(), handles.keys(), fontsize=8)
    if title or smooth > 1:
        note = f'moving average of {smooth} logged points' if smooth > 1 \
            else ''
        fig.suptitle('; '.join(t for t in (title, note) if t), fontsize=10)
    return _save(fig, out, dpi)


def _check_metric(runs: Sequence[dict], metric: str) -> None:
    lacking = [run['name'] for run in runs if metric not in run['val']]
    if lacking:
        available = list(dict.fromkeys(k for run in runs for k in run['val']))
        raise ValueError(
            f'Validation scalar `{metric}` is not in run(s) '
            f'{", ".join(lacking)}; validation scalars there are: '
            f'{", ".join(available) or "none (no validation was logged)"}.')


def teacher_lines(runs: Sequence[dict], metric: str) -> Dict[str, float]:
    """``{'teacher': v}`` from a ``teacher/<metric>`` scalar a run logged.

    The last value of the first run that has one; ``{}`` when none has.
    """
    key = f'teacher/{metric}'
    for run in runs:
        if key in run['val']:
            return {'teacher': run['val'][key][1][-1]}
    return {}


def plot_metric(runs: Sequence[dict],
                out: str,
                metric: str = 'coco/bbox_mAP',
                labels: Optional[Sequence[str]] = None,
                hlines: Optional[Dict[str, float]] = None,
                percent: bool = False,
                bar: bool = False,
                dpi: int = 100,
                title: Optional[str] = None) -> str:
    """A validation metric per run: over training, or its final value.

    Args:
        runs: Results of :func:`load_scalars`.
        out: The PNG file to write.
        metric: The validation scalar.
        labels: Legend names, one per run; default the run names.
        hlines: Reference values drawn as horizontal lines, ``{name: value}``
            in the plotted unit (percent when ``percent``). A run's
            ``teacher/<metric>`` scalar adds a ``teacher`` line unless
            ``hlines`` names one.
        percent: Multiply the metric by 100 (COCO AP is logged as a
            fraction, papers quote percent).
        bar: Draw the final value of each run as a bar instead of the
            curve over training. Runs that share a label make one bar, their
            mean, with each run as a dot.
        dpi: Resolution of the PNG.
        title: Chart title.

    Returns:
        str: ``out``.

    Raises:
        ValueError: The metric is missing from a run (the message lists the
            validation scalars there are), the runs mix epoch- and
            iteration-based logs in a curve chart, or a reference line is
            above 1 while the metric is plotted as a fraction.
    """
    labels = _labels(runs, labels)
    _check_metric(runs, metric)
    scale = 100.0 if percent else 1.0
    lines = {k: v * scale for k, v in teacher_lines(runs, metric).items()}
    lines.update(hlines or {})
    peak = max(max(run['val'][metric][1]) for run in runs)
    if not percent and peak <= 1.0:
        too_big = {k: v for k, v in lines.items() if v > 1.0}
        if too_big:
            name, value = next(iter(too_big.items()))
            raise ValueError(
                f'The reference line {name}={value} is above 1 while '
                f'`{metric}` is logged as a fraction (largest value '
                f'{peak:g}); pass --percent (percent=True) to plot in '
                f'percent, or give the line as {value / 100:g}.')
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.8), layout='constrained')
    ax = fig.add_subplot()
    colours = _colours(labels)
    unit_label = f'{metric} (%)' if percent else metric
    if bar:
        groups: Dict[str, List[float]] = {}
        for run, label in zip(runs, labels):
            groups.setdefault(label, []).append(
                run['val'][metric][1][-1] * scale)
        for i, (label, values) in enumerate(groups.items()):
            mean = sum(values) / len(values)
            ax.bar(i, mean, color=colours[label], alpha=0.85, width=0.6)
            if len(values) > 1:
                ax.scatter([i] * len(values), values, color='black', s=12,
                           zorder=3)
            ax.annotate(f'{mean:.4g}', (i, max(values)), xytext=(0, 4),
                        textcoords='offset points', ha='center', fontsize=8)
        ax.set_xticks(range(len(groups)), list(groups), fontsize=9)
        ax.set_ylabel(unit_label, fontsize=9)
    else:
        units = {run['val_unit'] for run in runs}
        if len(units) > 1:
            raise ValueError(
                'The runs mix validation positions by '
                f'{" and ".join(sorted(units))}; plot them separately or '
                'use bar=True (--bar) to compare final values.')
        seen = set()
        for run, label in zip(runs, labels):
            xs, ys = run['val'][metric]
            ax.plot(xs, [y * scale for y in ys], marker='o', markersize=4,
                    color=colours[label],
                    label=None if label in seen else label)
            seen.add(label)
        unit = units.pop()
        ax.set_xlabel({'iter': 'iteration'}.get(unit, unit), fontsize=9)
        ax.set_ylabel(unit_label, fontsize=9)
    for i, (name, value) in enumerate(lines.items()):
        ax.axhline(value, color='0.3', linestyle=('--', ':', '-.')[i % 3],
                   linewidth=1, label=f'{name} {value:g}')
    ax.grid(alpha=0.3, axis='y' if bar else 'both')
    ax.tick_params(labelsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, out, dpi)
