"""Tests for :mod:`sea_kd.compat.checkpoint_loaders`: every checkpoint that
mmengine reads, local or downloaded, loads weights-only and names the file
when it cannot be read (hostile files: ``tests/security``)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner import checkpoint as mmengine_checkpoint
from torch import nn

import sea_kd  # noqa: F401  registers the loaders
from sea_kd.compat import CheckpointFileError
from sea_kd.compat.checkpoint_loaders import (cache_path,
                                              load_local_checkpoint,
                                              load_remote_checkpoint)


def _weights() -> dict:
    return nn.Linear(2, 1).state_dict()


def test_loaders_are_registered() -> None:
    """mmengine's schemes and its module-level ``load_from_http`` (called by
    the torchvision://, open-mmlab:// and mmcls:// loaders) are ours."""
    schemes = CheckpointLoader._schemes
    assert schemes[''] is load_local_checkpoint
    assert schemes['http://'] is load_remote_checkpoint
    assert schemes['https://'] is load_remote_checkpoint
    assert mmengine_checkpoint.load_from_http is load_remote_checkpoint


# ------------------------------------------------------------------- local
def test_local_checkpoint_loads(tmp_path: Path) -> None:
    weights = _weights()
    torch.save(dict(state_dict=weights), tmp_path / 'ok.pth')
    loaded = CheckpointLoader.load_checkpoint(str(tmp_path / 'ok.pth'))
    torch.testing.assert_close(loaded['state_dict']['weight'],
                               weights['weight'])


@pytest.mark.parametrize('kind', ['directory', 'empty', 'truncated',
                                  'garbage'])
def test_broken_local_files_name_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f'{kind}.pth'
    if kind == 'directory':
        path.mkdir()
        expected = 'is a directory'
    elif kind == 'empty':
        path.write_bytes(b'')
        expected = r'is empty \(0 bytes\)'
    else:
        torch.save(dict(state_dict=_weights()), path)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2] if kind == 'truncated' else
                         b'not a checkpoint' * 10)
        expected = 'truncated or corrupt'
    with pytest.raises(CheckpointFileError, match=expected) as error:
        CheckpointLoader.load_checkpoint(str(path))
    assert str(path) in str(error.value)


def test_missing_local_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'absent.pth'))


# ------------------------------------------------------------------ remote
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_served_checkpoint_loads_and_its_hash_is_checked(server) -> None:
    served, url, cache = server
    weights = _weights()
    plain = served / 'model.pth'
    torch.save(dict(state_dict=weights), plain)
    named = served / f'model-{_sha(plain)[:8]}.pth'
    named.write_bytes(plain.read_bytes())

    for path in (plain, named):
        loaded = CheckpointLoader.load_checkpoint(f'{url}/{path.name}')
        torch.testing.assert_close(loaded['state_dict']['bias'],
                                   weights['bias'])
    # the cached copy is checked again on every use, not only on download
    cached = Path(cache_path(f'{url}/{named.name}'))
    cached.write_bytes(cached.read_bytes() + b'x')
    with pytest.raises(CheckpointFileError, match='does not match the hash'):
        CheckpointLoader.load_checkpoint(f'{url}/{named.name}')
