"""One live training run per work dir."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import os.path as osp
import socket
import sys
import time
from typing import Iterator

LOCK_NAME = '.train.lock'


class WorkDirBusyError(RuntimeError):
    """Another live run holds the work dir."""


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[str]:
    """Hold an exclusive lock on ``work_dir`` for the duration of a run.

    Two runs in one work dir would interleave their logs and
    ``scalars.json``, replace each other's checkpoints and
    ``last_checkpoint``, and a later ``--resume`` would continue the wrong
    run. The lock is an ``flock`` on ``work_dir/.train.lock``: the kernel
    releases it when the process ends in any way (``kill -9`` included), so
    a killed run never leaves the work dir stuck; the file's content
    (pid, host, start time, command) is only for the error message.

    Args:
        work_dir: The run's work dir (created if absent).

    Yields:
        The lock file's path.

    Raises:
        WorkDirBusyError: Another live process holds the lock.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES,
                                   errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 4096, 0).decode(errors='replace').strip()
            raise WorkDirBusyError(
                f'The work dir `{work_dir}` is in use by another training run '
                f'({holder or "holder unknown"}). Two runs in one work dir '
                'mix their logs and checkpoints. Wait for that run to end, '
                'or give this one its own `--work-dir`.') from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, (f'pid {os.getpid()} on {socket.gethostname()}, started '
                 f'{time.strftime("%Y-%m-%d %H:%M:%S")}: '
                 f'{" ".join(sys.argv)}\n').encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
