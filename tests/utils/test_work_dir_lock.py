"""Tests for :mod:`sea_kd.utils.work_dir_lock`."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sea_kd.utils import WorkDirBusyError, work_dir_lock

REPO_ROOT = Path(__file__).resolve().parents[2]


def _holder(work_dir: Path) -> subprocess.Popen:
    """A process that takes the lock, says so, and waits to be killed."""
    script = textwrap.dedent(f"""
        import time
        from sea_kd.utils.work_dir_lock import work_dir_lock
        with work_dir_lock({str(work_dir)!r}):
            print('locked', flush=True)
            time.sleep(600)
        """)
    proc = subprocess.Popen([sys.executable, '-c', script],
                            stdout=subprocess.PIPE, text=True,
                            cwd=str(REPO_ROOT))
    assert proc.stdout.readline().strip() == 'locked'
    return proc


def test_second_run_is_refused_and_a_killed_run_frees_the_dir(
        tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(WorkDirBusyError) as error:
            with work_dir_lock(str(tmp_path)):
                pass
        text = str(error.value)
        assert str(tmp_path) in text and f'pid {proc.pid}' in text
        assert '--work-dir' in text
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # kill -9 leaves the lock file behind, but not the lock
    assert (tmp_path / '.train.lock').exists()
    with work_dir_lock(str(tmp_path)) as path:
        assert Path(path).read_text().startswith('pid ')


def test_lock_is_released_after_the_run(tmp_path: Path) -> None:
    with work_dir_lock(str(tmp_path / 'new')):
        pass
    started = time.time()
    with work_dir_lock(str(tmp_path / 'new')):
        pass
    assert time.time() - started < 5
