"""Pickles that run code when loaded (the gadget through ``getattr`` and
``HistoryBuffer.__setstate__``, the classic ``os.system`` reduce), locally,
through mmengine's loaders and served over HTTP from 127.0.0.1: refused with
the file named, and nothing runs."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner import load_checkpoint
from torch import nn

from sea_kd.compat import UnsafeCheckpointError
from sea_kd.compat.checkpoint_loaders import cache_path
from tests.security.hostile_checkpoints import (save_getattr_gadget_checkpoint,
                                                save_system_checkpoint)

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTILE = REPO_ROOT / 'tests' / 'security' / 'hostile_checkpoints.py'
needs_weights_only_default = pytest.mark.skipif(
    tuple(int(v) for v in torch.__version__.split('.')[:2]) < (2, 6),
    reason='torch < 2.6 does not load with weights_only=True by default')


def _weights() -> dict:
    return nn.Linear(2, 1).state_dict()


def _run_python(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=180,
                          cwd=str(cwd))


@needs_weights_only_default
def test_getattr_gadget_runs_with_the_real_getattr_allowed(
        tmp_path: Path) -> None:
    """The gadget is real: with the built-in getattr allow-listed (what
    sea_kd did before), loading it runs code. Checked in a fresh process so
    that this process's allow-list is untouched."""
    marker = tmp_path / 'marker'
    completed = _run_python(f"""
        import builtins, importlib.util, torch
        from mmengine.logging import HistoryBuffer
        spec = importlib.util.spec_from_file_location('h', {str(HOSTILE)!r})
        hostile = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hostile)
        hostile.save_getattr_gadget_checkpoint(
            {str(tmp_path / 'gadget.pth')!r}, {str(marker)!r},
            dict(w=torch.ones(1)))
        torch.serialization.add_safe_globals([builtins.getattr, HistoryBuffer])
        torch.load({str(tmp_path / 'gadget.pth')!r}, weights_only=True)
        """, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert marker.read_text() == 'ran'


@needs_weights_only_default
def test_getattr_gadget_is_refused_once_sea_kd_is_imported(
        tmp_path: Path) -> None:
    """With sea_kd's stand-in the gadget fails to load and runs nothing,
    through plain ``torch.load`` and through mmengine's loader; a real
    getattr registered by someone else is removed first."""
    from tests.security.hostile_checkpoints import \
        save_getattr_gadget_checkpoint
    marker = tmp_path / 'marker'
    path = tmp_path / 'gadget.pth'
    save_getattr_gadget_checkpoint(path, marker, dict(w=torch.ones(1)))
    completed = _run_python(f"""
        import builtins, pickle, torch
        torch.serialization.add_safe_globals([builtins.getattr])
        import sea_kd  # noqa: F401
        from mmengine.runner import CheckpointLoader
        outcomes = []
        for load in (lambda: torch.load({str(path)!r}),
                     lambda: torch.load({str(path)!r}, weights_only=True),
                     lambda: CheckpointLoader.load_checkpoint({str(path)!r})):
            try:
                load()
                outcomes.append('loaded')
            except pickle.UnpicklingError as error:
                outcomes.append('refused' if 'getattr' in str(error)
                                else str(error))
        print(outcomes)
        """, REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == str(['refused'] * 3)
    assert 'removed it' in completed.stderr
    assert not marker.exists()


@pytest.mark.parametrize('save', [save_getattr_gadget_checkpoint,
                                  save_system_checkpoint])
def test_hostile_local_checkpoint_is_refused_without_a_trace(
        tmp_path: Path, save) -> None:
    """Through mmengine's ``load_checkpoint`` (``load_from``, ``init_cfg``)."""
    marker = tmp_path / 'marker'
    path = tmp_path / 'hostile.pth'
    save(path, marker, _weights())
    with pytest.raises(UnsafeCheckpointError, match='hostile.pth'):
        load_checkpoint(nn.Linear(2, 1), str(path))
    assert not marker.exists()


def test_served_file_with_a_wrong_hash_is_refused(server) -> None:
    served, url, cache = server
    path = served / 'model-0123abcd.pth'
    torch.save(dict(state_dict=_weights()), path)
    with pytest.raises(RuntimeError, match='invalid hash value'):
        CheckpointLoader.load_checkpoint(f'{url}/{path.name}')
    assert not Path(cache_path(f'{url}/{path.name}')).exists()
    assert not list(cache.rglob(path.name))


@pytest.mark.parametrize('save', [save_getattr_gadget_checkpoint,
                                  save_system_checkpoint])
def test_served_hostile_checkpoint_is_refused_without_a_trace(
        server, tmp_path: Path, save) -> None:
    """Refused, nothing runs, and the download does not stay in the cache;
    also through the torchvision:// path, which calls ``load_from_http``."""
    served, url, cache = server
    marker = tmp_path / 'marker'
    save(served / 'evil.pth', marker, _weights())
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        load_checkpoint(nn.Linear(2, 1), f'{url}/evil.pth')
    assert not marker.exists()
    assert not Path(cache_path(f'{url}/evil.pth')).exists()
    assert cache.is_dir() and not list(cache.rglob('evil.pth'))
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        mmengine_checkpoint.load_from_http(f'{url}/evil.pth')
    assert not marker.exists()
