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


def _inside(path: str, directory: str) -> bool:
    path, directory = osp.realpath(path), osp.realpath(directory)
    return osp.commonpath([path, directory]) == directory


def _candidates(work_dir: str) -> Tuple[List[str], List[Tuple[str, str]]]:
    """``last_checkpoint``'s target, then numbered checkpoints, newest
    first; and the targets passed over.

    mmengine writes the path it saved to into ``last_checkpoint``. In a
    copied work dir that path names the original's checkpoint, so a target
    outside ``work_dir`` is passed over when ``work_dir`` holds numbered
    checkpoints of its own; without any (``CheckpointHook(out_dir=...)``
    saves them elsewhere) it is followed.
    """
    numbered = []
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else []:
        match = _NUMBERED.match(name)
        if match:
            numbered.append((int(match.group(1)), osp.join(work_dir, name)))
    out, passed = [], []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and numbered and not _inside(named, work_dir):
            passed.append((named, f'it is outside the work dir `{work_dir}` '
                           f'that `{pointer}` belongs to, which holds '
                           'checkpoints of its own (a copied work dir?)'))
        elif named:
            out.append(named)
    for _, path in sorted(numbered, reverse=True):
        if all(not osp.exists(p) or not osp.samefile(p, path) for p in out):
            out.append(path)
    return out, passed


def latest_intact_checkpoint(
        work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest checkpoint of ``work_dir`` that is intact.

    Tries the file ``last_checkpoint`` names (unless it lies outside
    ``work_dir``: a copied work dir does not resume from the original's
    checkpoint), then ``iter_*.pth`` / ``epoch_*.pth`` from the highest
    number down.

    Args:
        work_dir: A training run's work dir.

    Returns:
        ``(path or None, [(skipped path, reason), ...])``.
    """
    candidates, skipped = _candidates(work_dir)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped
