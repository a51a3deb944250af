"""One seed, one start: the student inside a distiller gets the same
initial weights, and draws the same random numbers in its losses, as the
student trained alone with that seed, so that tools/compare.py's seeds pair
the runs. The teacher and the methods draw from streams of their own, at
build and in every step."""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import set_random_seed

from sea_kd.models.distillers.random_streams import (StepStreams,
                                                     random_stream_of_its_own)

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


CPU = torch.device('cpu')

#: methods that draw in every step (student, teacher kind, method)
STEP_DRAWS = {
    # the region sampler (randperm) and the budget (rand)
    'G-DetKD dense': ('retinanet', 'faster_rcnn',
                      dict(type='GDetKD', max_regions_per_img=4)),
    'G-DetKD two-stage': ('faster_rcnn', 'faster_rcnn',
                          dict(type='GDetKD', head_transfer=False,
                               max_regions_per_img=4)),
    # the general points' boxes and content (randn)
    'KD-DETR': ('dino', 'dino', dict(type='KDDETR', general_content='random')),
}


@pytest.mark.parametrize('case', sorted(STEP_DRAWS))
def test_a_step_leaves_the_student_the_stream_it_has_alone(case, save_state):
    """The methods draw in every step on a stream of their own: after a
    distillation step the student draws the numbers it draws after the
    same step alone."""
    kind, teacher_kind, method = STEP_DRAWS[case]
    student = tiny_detector_cfg(kind, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(teacher_kind, base_channels=16,
                                neck_channels=32)
    torch.manual_seed(123)
    ckpt = save_state(build(teacher), 'teacher.pth')
    alone = student_alone(student, seed=1)
    model = distiller(student, teacher, ckpt, [method], seed=1)
    alone.train()
    model.train()
    inputs, samples = make_batch(alone)
    torch.manual_seed(7)
    own = alone.loss(inputs, copy.deepcopy(samples))
    want = torch.rand(4)
    torch.manual_seed(7)
    losses = model.loss(inputs, copy.deepcopy(samples))
    got = torch.rand(4)
    name = model.method_names[0]
    assert any(k.startswith(f'loss_{name}_') for k in losses)  # it ran
    assert torch.equal(got, want)
    for key, value in own.items():  # and the step's own losses too
        torch.testing.assert_close(losses[key], value, rtol=0, atol=0)


class _Hub:
    """A MessageHub that says which iteration the runner is at."""

    def __init__(self, step):
        self.step = step

    def get_info(self, key):
        return self.step if key == 'iter' else None


def test_the_methods_draws_follow_the_seed_the_step_and_the_part(
        monkeypatch):
    def draws(seed, step, part=2):
        streams = StepStreams()
        torch.manual_seed(seed)  # after the build, as a resumed run does
        monkeypatch.setattr(MessageHub, 'get_current_instance',
                            lambda: _Hub(step))
        with streams.of(part, CPU):
            return torch.rand(3)

    first = draws(1, 5)
    assert torch.equal(draws(1, 5), first)  # reproducible, e.g. on resume
    assert not torch.equal(draws(1, 6), first)  # anew every step
    assert not torch.equal(draws(2, 5), first)  # another seed, other draws
    assert not torch.equal(draws(1, 5, part=1), first)


def test_a_second_call_at_the_same_iteration_draws_anew(monkeypatch):
    """A loop of one's own after a run leaves the hub's iteration put:
    its steps still draw anew."""
    monkeypatch.setattr(MessageHub, 'get_current_instance', lambda: _Hub(9))
    streams = StepStreams()
    with streams.of(2, CPU):
        first = torch.rand(3)
    with streams.of(2, CPU):
        assert not torch.equal(torch.rand(3), first)


def test_without_a_runner_each_call_is_a_step_of_its_own(monkeypatch):
    monkeypatch.setattr(MessageHub, 'get_current_instance',
                        lambda: _Hub(None))
    torch.manual_seed(1)
    streams = StepStreams()
    with streams.of(2, CPU):
        first = torch.rand(3)
    with streams.of(2, CPU):
        second = torch.rand(3)
    torch.manual_seed(1)
    with StepStreams().of(2, CPU):
        again = torch.rand(3)
    assert not torch.equal(first, second)
    assert torch.equal(first, again)
