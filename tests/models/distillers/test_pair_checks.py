"""Build-time checks of a teacher/student pair that several methods share."""
from types import SimpleNamespace

import pytest

from sea_kd.models.distillers.pair_checks import check_sigmoid_heads


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
