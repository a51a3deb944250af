"""Build-time checks of a teacher/student pair that several methods share."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors.pair_checks import (check_same_strides,
                                                 check_sigmoid_heads,
                                                 neck_channels_of)

from ...conftest import build, make_batch, tiny_detector_cfg


def detector(use_sigmoid: bool) -> SimpleNamespace:
    return SimpleNamespace(bbox_head=SimpleNamespace(
        use_sigmoid_cls=use_sigmoid))


def test_sigmoid_heads_pass():
    check_sigmoid_heads(detector(True), detector(True), 'ADL')


@pytest.mark.parametrize('role', ['student', 'teacher'])
def test_softmax_head_is_refused_naming_the_role_and_the_fix(role):
    student = detector(role != 'student')
    teacher = detector(role != 'teacher')
    with pytest.raises(ValueError) as err:
        check_sigmoid_heads(student, teacher, 'TBD')
    message = str(err.value)
    assert f'the {role} head' in message
    assert message.startswith('TBD distils sigmoid')
    assert 'use_sigmoid=True' in message


def test_same_strides_pass_and_differing_strides_name_levels_and_fix():
    retina = build(tiny_detector_cfg('retinanet'))  # P3-P7: 8 ... 128
    narrow = build(tiny_detector_cfg('retinanet', base_channels=4))
    faster = build(tiny_detector_cfg('faster_rcnn'))  # P2-P6: 4 ... 64
    check_same_strides(narrow, retina)
    # without a prior generator on one side there is nothing to compare
    check_same_strides(torch.nn.Linear(1, 1), retina)
    with pytest.raises(ValueError) as err:
        check_same_strides(faster, retina, levels=[0, 4])
    message = str(err.value)
    assert 'level 0: student (4.0, 4.0), teacher (8.0, 8.0)' in message
    assert 'level 4: student (64.0, 64.0), teacher (128.0, 128.0)' in message
    assert 'level 1' not in message
    assert '`start_level`, `num_outs`' in message


@pytest.mark.parametrize('method_type', ['FeatureImitation', 'SEA'])
def test_per_level_distillers_refuse_pairs_with_other_strides_at_build(
        method_type, save_state):
    teacher_cfg = tiny_detector_cfg('retinanet')
    ckpt = save_state(build(teacher_cfg), 'teacher.pth')
    with pytest.raises(ValueError, match='different strides'):
        MODELS.build(dict(type='Distiller', teacher=teacher_cfg,
                          teacher_ckpt=ckpt,
                          student=tiny_detector_cfg('faster_rcnn'),
                          methods=[dict(type=method_type,
                                        level_matching='index')]))
    # by stride (the default) the student's P3-P6 meet the teacher's
    model = MODELS.build(dict(type='Distiller', teacher=teacher_cfg,
                              teacher_ckpt=ckpt,
                              student=tiny_detector_cfg('faster_rcnn'),
                              methods=[dict(type=method_type)]))
    method = model.methods['fi' if 'Feature' in method_type else 'sea']
    assert method.level_pairs == [(1, 0), (2, 1), (3, 2), (4, 3)]
    inputs, samples = make_batch(model.student)
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v) for k, v in losses.items()
               if k.startswith('loss_fi') or k.startswith('loss_sea'))


@pytest.mark.parametrize('kind', ['rtmdet', 'yolox'])
def test_pafpn_necks_give_one_level_per_input_level(kind):
    """CSPNeXt-PAFPN and YOLOX-PAFPN have no ``num_outs``; each of their
    three levels must be distilled, not the first alone."""
    model = build(tiny_detector_cfg(kind, neck_channels=24))
    assert neck_channels_of(model) == [24, 24, 24]
    inputs, _ = make_batch(model)
    assert len(model.extract_feat(inputs)) == 3
