"""Checkpoint loading that never runs code and names the file when it fails.

mmengine reads every checkpoint through ``CheckpointLoader``, whose schemes
are replaced here (process-wide, once ``sea_kd`` is imported) so that the
Runner's ``load_from`` and ``--resume``, ``init_cfg`` pretrained weights,
``teacher_ckpt``/``student_ckpt`` and the tools all share one safe path:

* **Local files** (:func:`load_local_checkpoint`) load with
  ``torch.load(weights_only=True)`` and fail with an error that names the
  file: missing, a directory, empty, truncated or corrupt
  (:class:`CheckpointFileError`), or holding objects outside the weights-only
  allow-list (:class:`UnsafeCheckpointError`).
* **Remote files** (``http(s)://``, ``torchvision://``, ``open-mmlab://``,
  ``mmcls://``; :func:`load_remote_checkpoint`) are downloaded into torch's
  hub cache (``$TORCH_HOME/hub/checkpoints``), checked against the SHA-256
  prefix their name carries (``name-<hex>.pth``, as in mmdet's model zoo)
  on every use, not only on download, and loaded weights-only. mmengine's
  own loader unpickles downloads with ``weights_only=False``, which lets a
  served file run code. A download that is refused is deleted from the
  cache.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Optional, Union

import torch

__all__ = [
    'CheckpointFileError', 'UnsafeCheckpointError', 'load_local_checkpoint',
    'load_remote_checkpoint', 'register_safe_checkpoint_loaders'
]

#: URL prefixes whose mmengine loaders download a file (all of them end in
#: mmengine's ``load_from_http``).
REMOTE_PREFIXES = ('http://', 'https://')
#: torch's rule for the hash in a file name: ``-<hex digits>.``.
_HASH_IN_NAME = re.compile(r'-([a-f0-9]+)\.')
_MIN_HASH_DIGITS = 8


class CheckpointFileError(RuntimeError):
    """A checkpoint file that cannot be read (missing, empty, corrupt)."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that holds objects outside the weights-only allow-list."""


def _refusal_message(source: str, error: BaseException) -> str:
    return (f'Refused to load checkpoint `{source}`: it holds objects '
            'outside the weights-only allow-list, so loading it could run '
            'code. sea_kd only loads checkpoints with '
            'torch.load(weights_only=True). If the file is from a source you '
            'trust and was written by another tool, re-save its state_dict '
            'with torch.save. Details: ' + str(error).splitlines()[0])


def _torch_load(path: str, source: str, map_location: Any) -> Any:
    """``torch.load(weights_only=True)`` with errors that name ``source``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(_refusal_message(source, error)) from error
    except Exception as error:  # torch's errors for broken files vary
        raise CheckpointFileError(
            f'Checkpoint `{source}` cannot be read: the file is truncated or '
            'corrupt (an interrupted save or copy?) or is not a torch '
            f'checkpoint. torch said: {type(error).__name__}: '
            f'{str(error).splitlines()[0] if str(error) else ""}') from error


def load_local_checkpoint(filename: str,
                          map_location: Optional[Union[str, Any]] = None
                          ) -> Any:
    """Load a local checkpoint weights-only, naming the file on any failure.

    Registered as mmengine's loader for local paths (prefix ``''``).

    Args:
        filename: Path of the checkpoint file.
        map_location: As in :func:`torch.load`.

    Returns:
        The loaded checkpoint.

    Raises:
        FileNotFoundError: The path does not exist.
        CheckpointFileError: A directory, an empty, truncated or corrupt
            file.
        UnsafeCheckpointError: The file holds objects outside the
            weights-only allow-list.
    """
    path = osp.expanduser(str(filename))
    if osp.isdir(path):
        raise CheckpointFileError(
            f'Checkpoint `{filename}` is a directory, not a checkpoint file; '
            'give the path of a .pth file (a work dir names its latest one in '
            '`last_checkpoint`).')
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint `{filename}` does not exist.')
    if osp.getsize(path) == 0:
        raise CheckpointFileError(
            f'Checkpoint `{filename}` is empty (0 bytes): its save or copy was '
            'interrupted. Use an earlier checkpoint.')
    _check_container(path, str(filename))
    return _torch_load(path, str(filename), map_location)


def _check_container(path: str, source: str) -> None:
    """Raise unless ``path`` is a complete zip archive (torch's format since
    1.6) or starts like a legacy torch pickle."""
    if zipfile.is_zipfile(path):
        return
    with open(path, 'rb') as f:
        head = f.read(2)
    if head.startswith(b'PK'):
        raise CheckpointFileError(
            f'Checkpoint `{source}` is truncated or corrupt: the zip archive '
            'has no end (an interrupted save or copy?). Use an earlier '
            'checkpoint.')
    if not head.startswith(b'\x80'):
        raise CheckpointFileError(
            f'Checkpoint `{source}` is truncated or corrupt, or not a torch '
            'checkpoint at all: it is neither a zip archive nor a pickle.')


def _hub_checkpoint_dir(model_dir: Optional[str]) -> str:
    return model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')


def _name_hash(path: str) -> Optional[str]:
    """The SHA-256 prefix a file name carries, if any (torch's rule)."""
    match = _HASH_IN_NAME.search(osp.basename(path))
    if match is None or len(match.group(1)) < _MIN_HASH_DIGITS:
        return None
    return match.group(1)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, cached: str, progress: bool) -> None:
    """Download ``url`` to ``cached`` (torch writes a temporary file first
    and moves it into place, checking the name's hash prefix)."""
    os.makedirs(osp.dirname(cached), exist_ok=True)
    torch.hub.download_url_to_file(
        url, cached, hash_prefix=_name_hash(cached), progress=progress)


def _fetch_and_load(url: str, model_dir: Optional[str], map_location: Any,
                    progress: bool) -> Any:
    cached = osp.join(_hub_checkpoint_dir(model_dir),
                      osp.basename(url.split('?')[0]))
    if not osp.isfile(cached):
        _download(url, cached, progress)
    expected = _name_hash(cached)
    if expected is not None and not _sha256(cached).startswith(expected):
        raise CheckpointFileError(
            f'Cached download `{cached}` of `{url}` does not match the hash '
            f'its name carries ({expected}); it was altered or is incomplete. '
            'Delete it to download the file again.')
    try:
        _check_container(cached, url)
        return _torch_load(cached, url, map_location)
    except UnsafeCheckpointError:
        os.remove(cached)
        raise


def load_remote_checkpoint(filename: str,
                           map_location: Optional[Union[str, Any]] = None,
                           model_dir: Optional[str] = None,
                           progress: bool = False) -> Any:
    """Download a checkpoint (once per cache) and load it weights-only.

    Replaces mmengine's ``load_from_http``, both as the ``http(s)://``
    scheme and where mmengine's ``torchvision://``, ``open-mmlab://`` and
    ``mmcls://`` loaders call it. In a distributed run rank 0 downloads first
    and the other ranks read its cached copy.

    Args:
        filename: The URL.
        map_location: As in :func:`torch.load`.
        model_dir: Cache directory; torch's hub cache by default.
        progress: Show a download progress bar.

    Returns:
        The loaded checkpoint.

    Raises:
        CheckpointFileError: The cached file does not match the hash its
            name carries, or cannot be read.
        UnsafeCheckpointError: The file holds objects outside the
            weights-only allow-list (the download is deleted).
    """
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    checkpoint = None
    if rank == 0:
        checkpoint = _fetch_and_load(filename, model_dir, map_location,
                                     progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = _fetch_and_load(filename, model_dir, map_location,
                                         progress)
    return checkpoint


def register_safe_checkpoint_loaders() -> None:
    """Make mmengine load every checkpoint through this module.

    Registers :func:`load_local_checkpoint` and :func:`load_remote_checkpoint`
    as ``CheckpointLoader`` schemes and replaces
    ``mmengine.runner.checkpoint.load_from_http``, which mmengine's
    ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` loaders call.
    Idempotent; does nothing without mmengine.
    """
    try:
        from mmengine.runner import checkpoint as mmengine_checkpoint
    except ImportError:
        return
    loader = mmengine_checkpoint.CheckpointLoader
    loader.register_scheme('', load_local_checkpoint, force=True)
    loader.register_scheme(
        list(REMOTE_PREFIXES), load_remote_checkpoint, force=True)
    mmengine_checkpoint.load_from_http = load_remote_checkpoint
