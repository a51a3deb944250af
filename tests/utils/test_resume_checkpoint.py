"""Tests for :mod:`sea_kd.utils.resume_checkpoint`."""
from __future__ import annotations

from pathlib import Path

import torch

from sea_kd.utils import checkpoint_problem, latest_intact_checkpoint


def _save(path: Path) -> None:
    torch.save(dict(state_dict={'w': torch.full((1000, ), 7.0)}), path)


def test_intact_and_damaged_files(tmp_path: Path) -> None:
    good = tmp_path / 'good.pth'
    _save(good)
    assert checkpoint_problem(str(good)) is None
    assert checkpoint_problem(str(tmp_path / 'none.pth')) == \
        'it does not exist'
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    assert 'empty' in checkpoint_problem(str(empty))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:-100])
    assert 'truncated' in checkpoint_problem(str(truncated))
    # a damaged member with an intact directory: caught by the CRC check
    data = bytearray(good.read_bytes())
    start = data.index(b'\x00\x00\xe0\x40')  # 7.0 as float32
    data[start:start + 4] = b'\x01\x02\x03\x04'
    flipped = tmp_path / 'flipped.pth'
    flipped.write_bytes(bytes(data))
    assert 'corrupt' in checkpoint_problem(str(flipped))


def test_latest_corrupt_checkpoint_falls_back(tmp_path: Path) -> None:
    for it in (2, 4, 6):
        _save(tmp_path / f'iter_{it}.pth')
    (tmp_path / 'iter_6.pth').write_bytes(
        (tmp_path / 'iter_6.pth').read_bytes()[:50])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    path, skipped = latest_intact_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'iter_4.pth')
    assert [p for p, _ in skipped] == [str(tmp_path / 'iter_6.pth')]


def test_no_checkpoint_yet(tmp_path: Path) -> None:
    assert latest_intact_checkpoint(str(tmp_path)) == (None, [])
    assert latest_intact_checkpoint(str(tmp_path / 'absent')) == (None, [])


def test_a_copied_work_dir_does_not_resume_from_the_original(
        tmp_path: Path) -> None:
    """mmengine's ``last_checkpoint`` holds the path it saved to; in a copy
    of the work dir it names the original's checkpoint, which is passed
    over for the copy's own."""
    import shutil
    original = tmp_path / 'original'
    original.mkdir()
    for n in (1, 2):
        _save(original / f'iter_{n}.pth')
    (original / 'last_checkpoint').write_text(str(original / 'iter_2.pth'))
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    (copy / 'iter_2.pth').unlink()
    path, skipped = latest_intact_checkpoint(str(copy))
    assert path == str(copy / 'iter_1.pth')
    assert skipped[0][0] == str(original / 'iter_2.pth')
    assert 'outside the work dir' in skipped[0][1]


def test_checkpoints_saved_to_an_out_dir_are_followed(tmp_path: Path) -> None:
    """``CheckpointHook(out_dir=...)`` saves outside the work dir and points
    ``last_checkpoint`` there; with no checkpoint of its own in the work
    dir, that target is the one to resume from."""
    work = tmp_path / 'work_dirs' / 'run'
    work.mkdir(parents=True)
    out = tmp_path / 'storage' / 'run'
    out.mkdir(parents=True)
    _save(out / 'iter_4.pth')
    (work / 'last_checkpoint').write_text(str(out / 'iter_4.pth'))
    assert latest_intact_checkpoint(str(work)) == (str(out / 'iter_4.pth'),
                                                   [])
