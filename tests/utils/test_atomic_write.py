"""Tests for :mod:`sea_kd.utils.atomic_write`."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sea_kd.utils.atomic_write import atomic_open


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600)])
def test_the_file_gets_the_mode_of_a_new_file(tmp_path: Path, umask: int,
                                              mode: int) -> None:
    out = tmp_path / 'out.json'
    old = os.umask(umask)
    try:
        with atomic_open(str(out)) as f:
            json.dump({'a': 1}, f)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert json.loads(out.read_text()) == {'a': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['out.json']


def test_an_interrupted_write_leaves_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / 'out.bin'
    out.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(out), 'wb') as f:
            f.write(b'new, half')
            raise KeyboardInterrupt
    assert out.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['out.bin']


def test_pseudo_labels_are_written_with_the_mode_of_a_new_file(
        tmp_path: Path) -> None:
    """tools/pseudo_label.py wrote its JSON 0600 through mkstemp."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'pseudo_label', Path(__file__).parents[2] / 'tools' /
        'pseudo_label.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    old = os.umask(0o022)
    try:
        tool.write_json({'images': []}, str(tmp_path / 'pseudo.json'))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / 'pseudo.json').stat().st_mode) == 0o644
