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
  cache. Downloads are cached under a folder named by the URL's hash, so
  two URLs that end in the same name never share a file.
* **Other schemes** mmengine registers (``s3://``, ``petrel://``,
  ``pavi://``, and ``open-mmlab://`` names mapped to local files) keep
  their own reading, which unpickles with torch's default weights-only
  loading; their results pass through :func:`strip_config_strings` too.
* **Complete and intact**: a zip checkpoint's every member is checked
  against the CRC-32 torch wrote for it before it is unpickled, so zeroed
  or flipped bytes inside a tensor are an error, not altered weights.
* **No config string survives the load** (:func:`strip_config_strings`).
  mmengine runs a string carried in a checkpoint as a Python config in two
  places: ``Runner.resume`` executes ``meta['config']`` (written by mmdet
  2.x tools, never by mmengine), and ``BaseInferencer`` (``DetInferencer``
  without a model config) executes ``message_hub.runtime_info['cfg']`` or
  ``meta['cfg']``. Every checkpoint loaded through these loaders has those
  keys removed, so no code carried in a checkpoint runs; a removed
  ``meta['config']`` is reported with a warning that names the file.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import pickle
import re
import stat
import warnings
import zipfile
from typing import Any, Optional, Union

import torch

__all__ = [
    'CheckpointConfigRemovedWarning', 'CheckpointFileError',
    'UnsafeCheckpointError', 'archive_problem', 'load_local_checkpoint',
    'load_remote_checkpoint', 'register_safe_checkpoint_loaders',
    'strip_config_strings'
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


class CheckpointConfigRemovedWarning(UserWarning):
    """A checkpoint carried a config string that mmengine would execute."""


def strip_config_strings(checkpoint: Any, source: str) -> Any:
    """Remove the config strings mmengine would execute as Python.

    ``meta['config']`` (run by ``Runner.resume``), ``meta['cfg']`` and
    ``message_hub['runtime_info']['cfg']`` (run by ``BaseInferencer`` when
    no model config is given). mmengine writes ``meta['cfg']`` itself and
    reads it nowhere else, so removing it loses nothing a run needs; a
    ``meta['config']`` is reported, as mmengine never writes it.

    Args:
        checkpoint: A loaded checkpoint (changed in place).
        source: Its path or URL, for the warning.

    Returns:
        The same checkpoint.
    """
    if not isinstance(checkpoint, dict):
        return checkpoint
    meta = checkpoint.get('meta')
    if isinstance(meta, dict):
        meta.pop('cfg', None)
        if meta.pop('config', None) is not None:
            warnings.warn(
                f"Checkpoint `{source}` carries a config string in "
                "`meta['config']` (written by mmdet 2.x tools, or planted): "
                "mmengine's resume would run it as Python. It was removed "
                'unread; sea_kd never runs code carried in a checkpoint.',
                CheckpointConfigRemovedWarning, stacklevel=2)
    hub = checkpoint.get('message_hub')
    runtime_info = hub.get('runtime_info') if isinstance(hub, dict) else None
    if isinstance(runtime_info, dict):
        runtime_info.pop('cfg', None)
    return checkpoint


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
        checkpoint = torch.load(
            path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(_refusal_message(source, error)) from error
    except Exception as error:  # torch's errors for broken files vary
        raise CheckpointFileError(
            f'Checkpoint `{source}` cannot be read: the file is truncated or '
            'corrupt (an interrupted save or copy?) or is not a torch '
            f'checkpoint. torch said: {type(error).__name__}: '
            f'{str(error).splitlines()[0] if str(error) else ""}') from error
    return strip_config_strings(checkpoint, source)


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
    if not osp.exists(path):
        raise FileNotFoundError(f'Checkpoint `{filename}` does not exist.')
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise CheckpointFileError(
            f'Checkpoint `{filename}` is not a regular file (a FIFO, socket '
            'or device); give the path of a .pth file.')
    if osp.getsize(path) == 0:
        raise CheckpointFileError(
            f'Checkpoint `{filename}` is empty (0 bytes): its save or copy '
            'was interrupted. Use an earlier checkpoint.')
    _check_container(path, str(filename))
    return _torch_load(path, str(filename), map_location)


def archive_problem(path: str) -> Optional[str]:
    """Why a zip checkpoint is damaged, or ``None`` if every member is intact.

    Each member is read and checked against the CRC-32 stored for it (torch
    stores one unless ``torch.serialization.set_crc32_options(False)`` was
    used, which stores 0: such members are not checked).

    Args:
        path: A file that :func:`zipfile.is_zipfile` accepts.

    Returns:
        A short reason naming the damaged member, or ``None``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue
                with archive.open(info) as member:
                    while member.read(1 << 22):
                        pass
    # NotImplementedError: an unknown compression; RuntimeError: encrypted
    except (zipfile.BadZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError) as error:
        return f'it is corrupt ({error})'
    return None


def _check_container(path: str, source: str) -> None:
    """Raise unless ``path`` is a complete, intact zip archive (torch's
    format since 1.6) or starts like a legacy torch pickle."""
    if zipfile.is_zipfile(path):
        problem = archive_problem(path)
        if problem is not None:
            raise CheckpointFileError(
                f'Checkpoint `{source}` is damaged: {problem}. Its bytes were '
                'altered after it was written (a bad disk or copy?); use an '
                'intact copy or an earlier checkpoint.')
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


def cache_path(url: str, model_dir: Optional[str] = None) -> str:
    """Where the download of ``url`` is cached.

    Every download is cached in a folder named by the URL's hash, so that
    another URL ending in the same name never gets its file (a hash prefix
    in the name is too short to stop a crafted collision). A file that
    carries a SHA-256 prefix in its name (``name-<hex>.pth``) and already
    lies in torch's flat layout (``checkpoints/name``, put there by hand
    for offline use, or by torch) is used from there, checked against the
    prefix on every use.

    Args:
        url: The checkpoint's URL.
        model_dir: Cache directory; torch's hub cache by default.

    Returns:
        The cache path.

    Raises:
        CheckpointFileError: The URL names no file (it ends in ``/``).
    """
    name = osp.basename(url.split('?')[0].split('#')[0])
    if not name:
        raise CheckpointFileError(
            f'Checkpoint URL `{url}` names no file (it ends in `/`); give '
            'the URL of the .pth file itself.')
    root = _hub_checkpoint_dir(model_dir)
    flat = osp.join(root, name)
    if _name_hash(name) is not None and osp.isfile(flat):
        return flat  # placed by hand or by torch; checked against its hash
    url_key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return osp.join(root, f'url_{url_key}', name)


def _fetch_and_load(url: str, model_dir: Optional[str], map_location: Any,
                    progress: bool) -> Any:
    cached = cache_path(url, model_dir)
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
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()
    checkpoint = None
    if rank == 0:
        checkpoint = _fetch_and_load(filename, model_dir, map_location,
                                     progress)
    if world_size > 1:
        barrier()
        if rank > 0:
            checkpoint = _fetch_and_load(filename, model_dir, map_location,
                                         progress)
    return checkpoint


def _stripping(load):
    """``load`` (an mmengine scheme's loader) with
    :func:`strip_config_strings` applied to what it returns."""

    def stripped(filename: str, *args, **kwargs) -> Any:
        return strip_config_strings(load(filename, *args, **kwargs),
                                    filename)

    stripped._strips_config = True
    stripped.__doc__ = load.__doc__
    return stripped


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
    ours = (load_local_checkpoint, load_remote_checkpoint)
    for prefix, fn in list(loader._schemes.items()):
        if fn not in ours and not getattr(fn, '_strips_config', False):
            loader.register_scheme(prefix, _stripping(fn), force=True)
