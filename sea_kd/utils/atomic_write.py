"""Write a file so that it is either complete or absent."""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import secrets
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(out_file: str, mode: str = 'w') -> Iterator[IO]:
    """Open a temporary file next to ``out_file`` for writing; on success
    rename it to ``out_file`` (an atomic replace on POSIX), on any error or
    interruption remove it.

    The temporary file is created with mode ``0o666`` less the umask, as
    ``open(out_file, 'w')`` would create ``out_file`` (``0o644`` under the
    usual umask ``022``), not with :func:`tempfile.mkstemp`'s ``0o600``.

    Args:
        out_file: The file to write.
        mode: ``'w'`` (text) or ``'wb'`` (binary).

    Yields:
        The open temporary file.
    """
    directory = osp.dirname(osp.abspath(out_file))
    prefix = '.' + osp.basename(out_file) + '.'
    while True:
        tmp = osp.join(directory, f'{prefix}{secrets.token_hex(8)}.tmp')
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, out_file)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
