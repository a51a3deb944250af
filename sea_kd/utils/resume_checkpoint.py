"""Find the checkpoint ``--resume`` should continue from."""
from __future__ import annotations

import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

from ..compat.checkpoint_loaders import archive_problem

_NUMBERED = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why a checkpoint file cannot be resumed from, or ``None`` if intact.

    torch writes checkpoints as zip archives; every member's CRC is checked,
    so a truncated or partly overwritten file is found without unpickling.

    Args:
        path: The checkpoint file.

    Returns:
        A short reason (missing, empty, not a complete archive, a damaged
        member), or ``None``.
    """
    if not osp.isfile(path):
        return 'it does not exist'
    if osp.getsize(path) == 0:
        return 'it is empty (0 bytes)'
    if not zipfile.is_zipfile(path):
        return 'it is not a complete checkpoint (truncated or corrupt)'
    return archive_problem(path)


def _candidates(work_dir: str) -> List[str]:
    """``last_checkpoint``'s target, then numbered checkpoints, newest
    first."""
    out = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            out.append(named)
    numbered = []
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else []:
        match = _NUMBERED.match(name)
        if match:
            numbered.append((int(match.group(1)), osp.join(work_dir, name)))
    for _, path in sorted(numbered, reverse=True):
        if all(not osp.exists(p) or not osp.samefile(p, path) for p in out):
            out.append(path)
    return out


def latest_intact_checkpoint(
        work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest checkpoint of ``work_dir`` that is intact.

    Tries the file ``last_checkpoint`` names, then ``iter_*.pth`` /
    ``epoch_*.pth`` from the highest number down.

    Args:
        work_dir: A training run's work dir.

    Returns:
        ``(path or None, [(skipped path, reason), ...])``.
    """
    skipped = []
    for path in _candidates(work_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped
