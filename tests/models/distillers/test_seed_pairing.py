"""One seed, one start: the student inside a distiller gets the same
initial weights, and draws the same random numbers in its losses, as the
student trained alone with that seed, so that tools/compare.py's seeds pair
the runs. The teacher and the methods draw from a stream of their own."""
import copy

import pytest
import torch
from mmengine.runner import set_random_seed

from sea_kd.models.distillers.distiller import random_stream_of_its_own

from ...conftest import build, make_batch, tiny_detector_cfg

#: methods that build modules with random weights of their own
METHODS = {
    'FeatureImitation': dict(type='FeatureImitation'),
    'MGD': dict(type='MGD'),
    # SGFI's and CKD's modules draw in init_weights (Kaiming, Xavier)
    'GDetKD': dict(type='GDetKD', head_transfer=False),
}


def pair(kind, save_state):
    student = tiny_detector_cfg(kind, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(kind, base_channels=16, neck_channels=32)
    torch.manual_seed(123)
    return student, teacher, save_state(build(teacher), 'teacher.pth')


def student_alone(cfg, seed):
    set_random_seed(seed)
    return build(cfg)


def distiller(student, teacher, ckpt, methods, seed):
    set_random_seed(seed)
    return build(dict(type='Distiller', student=student, teacher=teacher,
                      teacher_ckpt=ckpt, methods=copy.deepcopy(methods)))


@pytest.mark.parametrize('kind,method', [
    ('retinanet', 'FeatureImitation'), ('retinanet', 'MGD'),
    ('faster_rcnn', 'FeatureImitation'), ('faster_rcnn', 'MGD'),
    ('faster_rcnn', 'GDetKD'),  # needs a two-stage teacher
])
def test_a_seed_gives_the_student_the_same_start_as_alone(
        kind, method, save_state):
    student, teacher, ckpt = pair(kind, save_state)
    alone = student_alone(student, seed=1).state_dict()
    inside = distiller(student, teacher, ckpt, [METHODS[method]],
                       seed=1).student.state_dict()
    assert alone.keys() == inside.keys()
    differing = [k for k in alone if not torch.equal(alone[k], inside[k])]
    assert not differing, differing
    # and the stream the student draws from next is the same
    student_alone(student, seed=1)
    after_alone = torch.rand(4)
    distiller(student, teacher, ckpt, [METHODS[method]], seed=1)
    assert torch.equal(torch.rand(4), after_alone)
    # and another seed another start: the comparison can fail
    other = student_alone(student, seed=2).state_dict()
    assert any(not torch.equal(alone[k], other[k]) for k in alone)


def test_the_methods_modules_follow_the_seed(save_state):
    """The methods' stream is the run's seed's, not the clock's."""
    student, teacher, ckpt = pair('retinanet', save_state)
    first = distiller(student, teacher, ckpt, [METHODS['MGD']], seed=1)
    again = distiller(student, teacher, ckpt, [METHODS['MGD']], seed=1)
    other = distiller(student, teacher, ckpt, [METHODS['MGD']], seed=2)
    a, b, c = (m.methods.state_dict() for m in (first, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_the_two_stage_students_sampling_draws_the_same_numbers(save_state):
    """Faster R-CNN samples its RoIs at random: with the teacher's forward
    in the step, the student's own losses on a batch are still those of the
    student alone with the same random state (the distillation term's
    weight is 0, so nothing else changes the student)."""
    student, teacher, ckpt = pair('faster_rcnn', save_state)
    alone = student_alone(student, seed=1)
    model = distiller(student, teacher, ckpt, [dict(
        type='FeatureImitation',
        loss_feat=dict(type='FeatureMSELoss', loss_weight=0.0))], seed=1)
    inputs, samples = make_batch(alone)
    torch.manual_seed(7)
    want = alone.loss(inputs, copy.deepcopy(samples))
    torch.manual_seed(7)
    got = model.loss(inputs, copy.deepcopy(samples))
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'):
        w = torch.stack(want[key]).sum() if isinstance(want[key], list) \
            else want[key]
        g = torch.stack(got[key]).sum() if isinstance(got[key], list) \
            else got[key]
        assert torch.equal(w, g), key


def test_a_block_on_its_own_stream_leaves_the_stream_outside():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with random_stream_of_its_own():
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected)
    # the block's stream is seeded from the run's seed, and is another one
    assert not torch.equal(inside, expected)
    torch.manual_seed(5)
    with random_stream_of_its_own():
        assert torch.equal(torch.rand(3), inside)
