import pytest
import torch
from torch import nn

from sea_kd.utils import (export_student, load_state_dict_strict,
                          read_state_dict)


def test_read_strips_ddp_prefix_and_accepts_bare_state_dicts(tmp_path):
    path = tmp_path / 'ddp.pth'
    torch.save(dict(state_dict={'module.w': torch.ones(1)}), path)
    assert list(read_state_dict(str(path), 'x')) == ['w']
    bare = tmp_path / 'bare.pth'
    torch.save({'w': torch.ones(1)}, bare)
    assert list(read_state_dict(str(bare), 'x')) == ['w']


def test_strict_load_lists_first_bad_keys(tmp_path):
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(8)])
    other = nn.Sequential(*[nn.Linear(2, 3) for _ in range(2)])
    path = tmp_path / 'other.pth'
    torch.save(dict(state_dict=other.state_dict()), path)
    with pytest.raises(RuntimeError) as err:
        load_state_dict_strict(model, str(path), 'teacher_ckpt')
    text = str(err.value)
    assert 'other.pth' in text and '`teacher_ckpt`' in text
    assert "12 missing keys, first: ['2.weight'" in text
    assert '(+7 more)' in text
    assert '0.weight: checkpoint (3, 2) vs model (2, 2)' in text


def test_strict_load_succeeds_on_matching_weights(tmp_path):
    model, source = nn.Linear(2, 2), nn.Linear(2, 2)
    path = tmp_path / 'ok.pth'
    torch.save(dict(state_dict=source.state_dict()), path)
    load_state_dict_strict(model, str(path), 'student_ckpt')
    assert torch.equal(model.weight, source.weight)


def test_missing_file_names_the_option(tmp_path):
    with pytest.raises(FileNotFoundError, match='`teacher_ckpt` points to'):
        read_state_dict(str(tmp_path / 'absent.pth'), 'teacher_ckpt')


def test_export_refuses_a_plain_checkpoint(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save(dict(state_dict={'backbone.w': torch.ones(1)}), path)
    with pytest.raises(ValueError, match='not a distiller checkpoint'):
        export_student(str(path), str(tmp_path / 'out.pth'))


def test_export_keeps_student_keys_only(tmp_path):
    path = tmp_path / 'distiller.pth'
    torch.save(dict(state_dict={'student.backbone.w': torch.ones(1),
                                'adapters.0.conv.weight': torch.ones(1)}),
               path)
    out = tmp_path / 'out.pth'
    info = export_student(str(path), str(out))
    assert info['dropped'] == ['adapters'] and info['num_tensors'] == 1
    saved = torch.load(out, weights_only=True)
    assert list(saved['state_dict']) == ['backbone.w']
