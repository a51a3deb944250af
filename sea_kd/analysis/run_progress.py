"""Live progress of a training or test run that writes to a log file.

The project's tools run ``tools/train.py`` and ``tools/test.py`` as
subprocesses whose output goes to a log. :func:`run_logged` runs one and,
while it runs, reads mmengine's own progress lines from that log
(``Iter(train) [ 250/600] ... eta: 0:01:10``) and reports the iterations
done of total, the run's time left (mmengine's ``eta``) and the overall time
left (from the caller): updated in place on a terminal, as a plain line
every ``every`` seconds otherwise (CI, a log file). A failing run raises an
error that shows the last lines of its log.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, TextIO

# iteration-based loops: "Iter(train) [ 50/600]"; epoch-based ones:
# "Epoch(train)  [3][ 50/7330]"
_ITER = re.compile(r'(?:Iter\((train|val|test)\)|'
                   r'Epoch\((train|val|test)\)\s*\[\s*(\d+)\])'
                   r'\s*\[\s*(\d+)/(\d+)\]')
_ETA = re.compile(r'eta: (?:(\d+) days?, )?(\d+):(\d\d):(\d\d)')
_TAIL_BYTES = 1 << 16


@dataclass(frozen=True)
class LogProgress:
    """The last progress line of an mmengine log.

    Attributes:
        stage: ``'train'``, ``'val'`` or ``'test'``.
        done: Iterations done in that stage (in the epoch, for an
            epoch-based loop).
        total: Iterations of the stage (of the epoch).
        eta: mmengine's estimate of the stage's time left, in seconds
            (``None`` when the line has none): all training epochs left,
            for an epoch-based training.
        epoch: The epoch, for an epoch-based loop (``None`` otherwise).
    """
    stage: str
    done: int
    total: int
    eta: Optional[float]
    epoch: Optional[int] = None


def parse_progress(text: str) -> Optional[LogProgress]:
    """The last ``Iter(<stage>) [done/total]`` line of ``text``, or
    ``None`` when there is none yet."""
    last = None
    for line in text.splitlines():
        match = _ITER.search(line)
        if match:
            last = (match, line)
    if last is None:
        return None
    match, line = last
    eta = _ETA.search(line)
    seconds = None
    if eta:
        days, h, m, s = (int(g or 0) for g in eta.groups())
        seconds = float(((days * 24 + h) * 60 + m) * 60 + s)
    stage = match.group(1) or match.group(2)
    epoch = int(match.group(3)) if match.group(3) else None
    return LogProgress(stage, int(match.group(4)), int(match.group(5)),
                       seconds, epoch)


def read_progress(log: str) -> Optional[LogProgress]:
    """:func:`parse_progress` of the end of the file ``log``."""
    try:
        with open(log, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_BYTES))
            return parse_progress(f.read().decode('utf-8', 'replace'))
    except OSError:
        return None


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


def progress_line(label: str, state: Optional[LogProgress], elapsed: float,
                  overall_left: Optional[float]) -> str:
    """One progress report of a run in flight."""
    if state is None:
        where = 'starting'
    else:
        epoch = '' if state.epoch is None else f' epoch {state.epoch},'
        where = (f'{state.stage}{epoch} iter {state.done}/{state.total} '
                 f'({100 * state.done // max(state.total, 1)}%)')
        if state.eta is not None:
            where += f', run about {clock(state.eta)} left'
    line = f'  {label}: {where}; elapsed {clock(elapsed)}'
    if overall_left is not None:
        line += f'; all about {clock(overall_left)} left'
    return line


def _bar(state: Optional[LogProgress], width: int = 20) -> str:
    filled = 0 if state is None else \
        width * state.done // max(state.total, 1)
    return '[' + '#' * filled + '.' * (width - filled) + ']'


def run_logged(cmd: Sequence[str],
               log: str,
               label: str,
               cwd: Optional[str] = None,
               env: Optional[dict] = None,
               overall_left: Optional[Callable[
                   [Optional[LogProgress], float], Optional[float]]] = None,
               every: float = 20.0,
               stream: Optional[TextIO] = None,
               in_place: Optional[bool] = None,
               tail_lines: int = 40) -> None:
    """Run ``cmd`` with its output in ``log``, reporting its progress.

    Args:
        cmd: The command (e.g. ``[python, 'tools/train.py', config, ...]``).
        log: The file its stdout and stderr go to (overwritten).
        label: How the reports name the run.
        cwd: Its working directory.
        env: Its environment (``None``: this process's).
        overall_left: ``f(state, elapsed)`` giving the seconds left for all
            the runs, this one included, or ``None`` when unknown.
        every: Seconds between two plain reports (also the longest silence
            in place on a terminal).
        stream: Where the reports go (``None``: ``sys.stdout``).
        in_place: Update one line in place; ``None``: when ``stream`` is a
            terminal.
        tail_lines: Lines of the log shown when the run fails.

    Raises:
        RuntimeError: The run exited with an error; the message holds the
            last ``tail_lines`` lines of its log and its path.
    """
    stream = sys.stdout if stream is None else stream
    if in_place is None:
        in_place = stream.isatty()
    start = time.monotonic()
    last_report = start
    width = shutil.get_terminal_size().columns
    with open(log, 'w') as f:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=f,
                                stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    proc.wait(timeout=min(every, 1.0))
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if not in_place and now - last_report < every:
                    continue
                last_report = now
                state = read_progress(log)
                left = overall_left(state, now - start) \
                    if overall_left else None
                line = progress_line(label, state, now - start, left)
                if in_place:  # one terminal row, or \r cannot rewrite it
                    text = f'{_bar(state)}{line}'[:max(width - 1, 1)]
                    stream.write(f'\r{text}\x1b[K')
                else:
                    stream.write(line + '\n')
                stream.flush()
        except BaseException:  # an error here or Ctrl-C: no orphan run
            proc.kill()
            proc.wait()
            raise
    if in_place:
        stream.write('\r\x1b[K')
        stream.flush()
    if proc.returncode != 0:
        with open(log, errors='replace') as f:
            tail = ''.join(f.readlines()[-tail_lines:])
        raise RuntimeError(
            f'{label} failed (exit {proc.returncode}); the last lines of its '
            f'log {log}:\n{tail}')
