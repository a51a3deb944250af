"""Checkpoints as a hostile or careless user makes them, against the loaders
every entry point shares (in-process; the tools' subprocess runs are in
``test_hostile_tools.py``): config strings that mmengine would execute,
bytes altered inside a tensor, names that collide in the download cache,
paths that are not files, and checkpoints of another model."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from mmengine.runner import CheckpointLoader
from torch import nn

from sea_kd.compat import CheckpointFileError
from sea_kd.compat.checkpoint_loaders import (CheckpointConfigRemovedWarning,
                                              cache_path)
from sea_kd.utils.checkpoint_loading import read_checkpoint

#: A config string that, if executed as a ``.py`` config, creates ``{}``.
PAYLOAD = "__import__('pathlib').Path({!r}).write_text('ran')\nx = 1\n"


def _weights() -> dict:
    return nn.Linear(2, 1).state_dict()


def save_config_carrier(path: Path, marker: Path, key: str) -> None:
    """A checkpoint of plain data whose config string (``meta.config``,
    ``meta.cfg`` or ``message_hub.runtime_info.cfg``) writes ``marker``
    when mmengine runs it as a config."""
    code = PAYLOAD.format(str(marker))
    meta = dict(iter=1, epoch=0)
    hub = dict(log_scalars={}, runtime_info={}, resumed_keys={})
    if key == 'message_hub':
        hub['runtime_info']['cfg'] = code
    else:
        meta[key] = code
    torch.save(dict(state_dict=_weights(), meta=meta, message_hub=hub), path)


# ------------------------------------------------ config strings (item 1)
@pytest.mark.parametrize('key', ['config', 'cfg', 'message_hub'])
def test_config_strings_are_removed_on_every_load(tmp_path: Path,
                                                  key: str) -> None:
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'evil.pth'
    save_config_carrier(path, marker, key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        loaded = CheckpointLoader.load_checkpoint(str(path))
    assert 'config' not in loaded['meta'] and 'cfg' not in loaded['meta']
    assert 'cfg' not in loaded['message_hub']['runtime_info']
    assert loaded['meta']['iter'] == 1  # the rest of meta stays
    reported = [w for w in caught
                if issubclass(w.category, CheckpointConfigRemovedWarning)]
    # mmengine never writes meta['config']: only that one is reported
    assert len(reported) == (1 if key == 'config' else 0)
    if reported:
        assert str(path) in str(reported[0].message)
    assert not marker.exists()


def test_served_config_string_is_removed(server, tmp_path: Path) -> None:
    served, url, _ = server
    marker = tmp_path / 'PWNED'
    save_config_carrier(served / 'evil.pth', marker, 'config')
    with pytest.warns(CheckpointConfigRemovedWarning, match='evil.pth'):
        loaded = CheckpointLoader.load_checkpoint(f'{url}/evil.pth')
    assert 'config' not in loaded['meta']
    assert not marker.exists()


def test_open_mmlab_name_of_a_local_file_is_stripped_too(
        tmp_path: Path, monkeypatch) -> None:
    """mmengine's ``open-mmlab://`` loader reads a name that
    ``$MMENGINE_HOME/open_mmlab.json`` maps to a local file with its own
    ``torch.load``; the config strings are removed from it as well."""
    import json
    marker = tmp_path / 'PWNED'
    save_config_carrier(tmp_path / 'evil.pth', marker, 'config')
    (tmp_path / 'open_mmlab.json').write_text(json.dumps(dict(
        evil_model='evil.pth')))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path))
    with pytest.warns(CheckpointConfigRemovedWarning,
                      match='open-mmlab://evil_model'):
        loaded = CheckpointLoader.load_checkpoint('open-mmlab://evil_model')
    assert 'config' not in loaded['meta'] and loaded['meta']['iter'] == 1
    assert not marker.exists()


def test_runner_resume_runs_no_meta_config(tmp_path: Path) -> None:
    """mmengine's ``Runner.resume`` itself: it would run ``meta['config']``
    through ``Config.fromstring``."""
    from mmengine.runner import Runner
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'evil.pth'
    save_config_carrier(path, marker, 'config')
    runner = Runner(model=nn.Linear(2, 1), work_dir=str(tmp_path / 'w'),
                    train_dataloader=dict(
                        dataset=[torch.zeros(2)] * 2,
                        sampler=dict(type='DefaultSampler', shuffle=False),
                        batch_size=1),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    train_cfg=dict(by_epoch=False, max_iters=1))
    with pytest.warns(CheckpointConfigRemovedWarning):
        runner.resume(str(path), resume_optimizer=False,
                      resume_param_scheduler=False)
    assert not marker.exists()


@pytest.mark.parametrize('key', ['cfg', 'message_hub'])
def test_inferencer_without_a_config_runs_no_checkpoint_string(
        tmp_path: Path, key: str) -> None:
    """``DetInferencer(weights=...)`` with no model config would run the
    config carried in the checkpoint; it finds none and says so."""
    from mmdet.apis import DetInferencer
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'evil.pth'
    save_config_carrier(path, marker, key)
    with pytest.raises(ValueError, match='Cannot find the config'):
        DetInferencer(weights=str(path), device='cpu')
    assert not marker.exists()


# ------------------------------------------------ damaged bytes (item 5)
def test_zeroed_bytes_inside_a_tensor_are_refused(tmp_path: Path) -> None:
    """A file whose zip directory is intact but whose tensor bytes were
    zeroed loaded silently with altered weights; the CRC check refuses it
    on every local load, naming the file and the member."""
    path = tmp_path / 'damaged.pth'
    torch.save(dict(state_dict={'w': torch.full((1000, ), 7.0)}), path)
    data = bytearray(path.read_bytes())
    start = data.index(b'\x00\x00\xe0\x40' * 4)  # 7.0 as float32
    data[start:start + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointFileError, match='damaged') as error:
        CheckpointLoader.load_checkpoint(str(path))
    assert str(path) in str(error.value) and 'CRC' in str(error.value)


# ------------------------------------------------ paths and URLs (item 6)
@pytest.mark.parametrize('kind', ['fifo', 'device'])
def test_a_path_that_is_not_a_file_is_not_called_missing(
        tmp_path: Path, kind: str) -> None:
    if kind == 'fifo':
        path = tmp_path / 'pipe.pth'
        os.mkfifo(path)
    else:
        path = Path('/dev/zero')
    with pytest.raises(CheckpointFileError,
                       match='is not a regular file') as error:
        CheckpointLoader.load_checkpoint(str(path))
    assert str(path) in str(error.value)


def test_urls_with_the_same_file_name_get_their_own_downloads(
        server) -> None:
    served, url, _ = server
    for folder, value in (('a', 1.0), ('b', 2.0)):
        (served / folder).mkdir()
        torch.save(dict(state_dict={'w': torch.tensor([value])}),
                   served / folder / 'model.pth')
    first = CheckpointLoader.load_checkpoint(f'{url}/a/model.pth')
    second = CheckpointLoader.load_checkpoint(f'{url}/b/model.pth')
    assert first['state_dict']['w'].item() == 1.0
    assert second['state_dict']['w'].item() == 2.0


def test_hash_named_downloads_are_keyed_by_url_unless_placed_by_hand(
        tmp_path: Path) -> None:
    """A hash prefix in a name is too short to stop a crafted collision, so
    a hash-named download is keyed by its URL like any other; a copy placed
    in torch's flat layout by hand (offline use) is used from there."""
    name = 'retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth'
    genuine = cache_path(f'http://zoo.example/{name}', str(tmp_path))
    hostile = cache_path(f'http://evil.example/{name}', str(tmp_path))
    assert genuine != hostile and str(tmp_path / name) not in (genuine,
                                                               hostile)
    (tmp_path / name).write_bytes(b'placed by hand')
    assert cache_path(f'http://zoo.example/{name}', str(tmp_path)) == \
        str(tmp_path / name)
    assert cache_path('http://host/a/model.pth', str(tmp_path)) != \
        cache_path('http://host/b/model.pth', str(tmp_path))


def test_url_ending_in_a_slash_names_the_problem() -> None:
    with pytest.raises(CheckpointFileError, match='names no file'):
        CheckpointLoader.load_checkpoint('http://127.0.0.1:9/models/')


def test_missing_checkpoint_hint_names_only_real_options(
        tmp_path: Path) -> None:
    """``tools/test.py``'s checkpoint is not a model option: the hint must not
    name ``--cfg-options model.checkpoint``; teacher_ckpt's hint names its
    option."""
    absent = str(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError) as error:
        read_checkpoint(absent, 'checkpoint')
    assert 'model.checkpoint' not in str(error.value)
    assert absent in str(error.value)
    with pytest.raises(FileNotFoundError,
                       match='model.teacher_ckpt=PATH'):
        read_checkpoint(absent, 'teacher_ckpt')


# ------------------------------------------ another model's keys (item 5)
def test_only_a_methods_own_keys_are_taken_for_legacy_ones(
        save_state) -> None:
    """The renaming for sea_kd <= 0.1 checkpoints (method modules on the
    distiller itself) renames a key only when the method has it, so a plain
    detector checkpoint is reported key for key, not hidden under
    ``methods.<name>.``."""
    from mmdet.registry import MODELS

    from tests.conftest import build, tiny_detector_cfg
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16, neck_channels=64)
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=32)
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg,
        teacher_ckpt=save_state(build(t_cfg)),
        methods=[dict(type='FeatureImitation')]))
    state = model.state_dict()
    legacy = {(k[len('methods.fi.'):] if k.startswith('methods.fi.') else k):
              v.clone() for k, v in state.items()}
    assert any(k.startswith('adapters.') for k in legacy)
    model.load_state_dict(legacy, strict=True)  # the legacy layout loads
    detector = build(s_cfg).state_dict()
    result = model.load_state_dict(detector, strict=False)
    assert set(result.unexpected_keys) == set(detector)
    assert not any(k.startswith('methods.fi.')
                   for k in result.unexpected_keys)
