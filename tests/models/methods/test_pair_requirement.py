"""Methods say what they accept: requirements, the short refusal reason,
the full build error, and the hint built from the answers."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.distillers.method_hints import (methods_for_pair,
                                                   methods_hint,
                                                   offered_methods)
from sea_kd.models.methods import ADL, LD, TBD, DistillMethod, GDetKD
from sea_kd.models.methods.pair_requirement import (PairRequirement, for_both,
                                                    for_role)

from ...conftest import build, tiny_detector_cfg


def pair(student_kind, teacher_kind):
    torch.manual_seed(0)
    return (build(tiny_detector_cfg(student_kind, base_channels=8)),
            build(tiny_detector_cfg(teacher_kind, base_channels=16,
                                    neck_channels=64)))


def test_for_both_and_for_role_check_the_named_sides():
    seen = []
    check = for_both(lambda det, role: seen.append((det, role)))
    check('s', 't')
    assert seen == [('s', 'student'), ('t', 'teacher')]
    seen.clear()
    for_role(lambda det, role: seen.append((det, role)), 'teacher')('s', 't')
    assert seen == [('t', 'teacher')]


def test_a_requirement_is_met_unless_its_check_refuses():
    def refuse(s, t):
        raise ValueError('no')
    assert PairRequirement('r', lambda s, t: None).met_by(1, 2)
    assert not PairRequirement('r', refuse).met_by(1, 2)

    def broken(s, t):
        raise KeyError('a bug, not a refusal')
    with pytest.raises(KeyError):
        PairRequirement('r', broken).met_by(1, 2)


def test_the_first_unmet_need_gives_the_reason_and_the_error():
    retina = pair('retinanet', 'retinanet')
    # LD's record parts and layout are met; its own first need is not
    assert [n.reason for n in LD.requirements()] == [
        'reads dense-head outputs', 'reads dense-head outputs',
        'needs the same prior layout', 'needs GFL box distributions',
        'needs the same reg_max']
    assert LD.pair_refusal(*retina) == 'needs GFL box distributions'
    with pytest.raises(TypeError, match='LD distils box-edge distributions'):
        LD.check_pair(*retina)
    assert LD.pair_refusal(*pair('gfl', 'gfl')) is None
    # GFL's view forms boxes from its distributions: TBD takes GFL pairs
    assert TBD.pair_refusal(*pair('gfl', 'gfl')) is None
    # the prior layout is checked before the method's own needs
    assert LD.pair_refusal(*pair('retinanet', 'gfl')) == \
        'needs the same prior layout'
    # the record part's need comes before the method's own
    faster = pair('faster_rcnn', 'faster_rcnn')
    assert TBD.pair_refusal(*faster) == 'reads dense-head outputs'


def test_a_dispatching_method_answers_for_the_pipeline_it_picks():
    # two-stage teacher, FCOS student: the dense pipeline takes it
    fcos, faster = pair('fcos', 'faster_rcnn')
    assert GDetKD.pair_refusal(fcos, faster) is None
    assert 'G-DetKD' in methods_for_pair(fcos, faster)
    retina = pair('retinanet', 'retinanet')
    assert GDetKD.pair_refusal(*retina) == 'needs a two-stage teacher'
    # G-DetKD's own needs are met (a two-stage teacher, a one-stage
    # student); the dense pipeline it picks reads the student's dense head,
    # of which sea_kd has no view for FoveaBox
    fovea, _ = pair('fovea', 'faster_rcnn')
    assert all(n.met_by(fovea, faster) for n in GDetKD.requirements())
    assert GDetKD.pair_refusal(fovea, faster) == 'reads dense-head outputs'


def test_a_head_without_a_view_is_a_refusal_not_an_error():
    fovea = pair('fovea', 'fovea')
    names = methods_for_pair(*fovea)
    assert 'FI' in names and 'ADL' not in names
    assert ADL.pair_refusal(*fovea) == 'reads dense-head outputs'
    with pytest.raises(NotImplementedError, match='FoveaHead'):
        ADL.check_pair(*fovea)


def test_the_hint_names_the_methods_that_answer_yes():
    retina = pair('retinanet', 'retinanet')
    names = methods_for_pair(*retina)
    assert names == ['FI', 'ADL', 'SEA', 'TBD', 'PKD', 'CWD', 'MGD', 'FGD',
                     'CrossKD', 'BCKD', 'DSI']
    assert methods_hint(*retina).startswith(
        'Methods that distil this pair: FI, ADL,')
    # the pipelines and the tap-configured method are not offered by name
    offered = {cls.__name__ for cls in offered_methods()}
    assert not {'GDetKDDense', 'GDetKDTwoStage',
                'AttentionTransfer'} & offered
    assert all(issubclass(c, DistillMethod) for c in offered_methods())


def test_a_refused_build_raises_the_full_error_with_the_hint(save_state):
    student, teacher = pair('retinanet', 'retinanet')
    ckpt = save_state(teacher, 'teacher.pth')
    with pytest.raises(TypeError) as error:
        MODELS.build(dict(
            type='Distiller',
            student=tiny_detector_cfg('retinanet', base_channels=8),
            teacher=tiny_detector_cfg('retinanet', base_channels=16,
                                      neck_channels=64),
            teacher_ckpt=ckpt, methods=[dict(type='LD')]))
    message = str(error.value)
    assert 'LD distils box-edge distributions' in message
    assert 'Methods that distil this pair: FI,' in message
