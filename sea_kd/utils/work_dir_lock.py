"""One live training run per work dir."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import os.path as osp
import socket
import stat
import sys
import time
from typing import Iterator

LOCK_NAME = '.train.lock'


class WorkDirBusyError(RuntimeError):
    """Another live run holds the work dir."""


class UnsafeLockFileError(RuntimeError):
    """The lock path is not a plain file of its own (a symbolic link, a hard
    link, a FIFO, ...), so writing the lock would change another file."""


def _open_lock_file(path: str) -> int:
    """Open (or create) the lock file at ``path`` without following a
    symbolic link, and check that it is a plain file with no other name.

    Args:
        path: The lock file's path.

    Returns:
        A read-write file descriptor of the lock file.

    Raises:
        UnsafeLockFileError: ``path`` is a symbolic link, not a regular
            file, or a hard link of another file.
    """
    fix = (f'Remove `{path}` (the run recreates it as a plain file), or give '
           'the run another `--work-dir`.')
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW,
                     0o644)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        try:
            target = f' (to `{os.readlink(path)}`)'
        except OSError:
            target = ''
        raise UnsafeLockFileError(
            f'The lock file `{path}` is a symbolic link{target}; it is not '
            'followed, since the run would overwrite the file it points to. '
            f'{fix}') from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        what = 'not a regular file' if not stat.S_ISREG(info.st_mode) \
            else f'a hard link ({info.st_nlink} names for one file)'
        raise UnsafeLockFileError(
            f'The lock file `{path}` is {what}; the run would overwrite it. '
            f'{fix}')
    return fd


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[str]:
    """Hold an exclusive lock on ``work_dir`` for the duration of a run.

    Two runs in one work dir would interleave their logs and
    ``scalars.json``, replace each other's checkpoints and
    ``last_checkpoint``, and a later ``--resume`` would continue the wrong
    run. The lock is an ``flock`` on ``work_dir/.train.lock``: the kernel
    releases it when the process ends in any way (``kill -9`` included), so
    a killed run never leaves the work dir stuck; the file's content
    (pid, host, start time, command) is only for the error message. The
    lock file is opened without following a symbolic link, and one that is
    not a plain file of its own is refused, so the run never overwrites
    another file through it.

    Args:
        work_dir: The run's work dir (created if absent).

    Yields:
        The lock file's path.

    Raises:
        WorkDirBusyError: Another live process holds the lock.
        UnsafeLockFileError: ``work_dir/.train.lock`` is a symbolic link,
            a hard link or not a regular file.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = _open_lock_file(path)
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
