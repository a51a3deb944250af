"""The factor function of every policy against hand-computed values."""
import math

import pytest

from sea_kd.engine import DistillWeightSchedule


def values(schedule, steps, max_steps=None):
    return [schedule(t, max_steps) for t in steps]


def test_constant_with_factor_and_stop():
    schedule = DistillWeightSchedule(factor=0.5, stop_at=3)
    assert values(schedule, range(6)) == [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]
    assert values(DistillWeightSchedule(), [0, 10**6]) == [1.0, 1.0]


def test_linear_warmup_alone():
    schedule = DistillWeightSchedule(warmup=4, warmup_start_factor=0.2)
    assert values(schedule, [0, 1, 2, 3, 4, 50]) == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


def test_linear_decay():
    schedule = DistillWeightSchedule(policy='linear', begin=2, end=6,
                                     end_factor=0.2)
    assert values(schedule, range(10)) == pytest.approx(
        [1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2, 0.2])


def test_cosine_decay_to_the_end_of_the_run():
    schedule = DistillWeightSchedule(policy='cosine')
    expected = [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5,
                (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]
    assert values(schedule, [0, 2, 4, 6, 8], max_steps=8) == pytest.approx(
        expected)


def test_step():
    schedule = DistillWeightSchedule(policy='step', milestones=[5, 3],
                                     gamma=0.5)
    assert values(schedule, range(7)) == pytest.approx(
        [1, 1, 1, 0.5, 0.5, 0.25, 0.25])


def test_warmup_then_cosine_decay_then_stop():
    # warm-up 0 -> 1 over 2 steps, then cosine from step 2 (= warmup) to 6
    # down to 0.1, all times 2; stop from step 5 on
    schedule = DistillWeightSchedule(policy='cosine', factor=2.0, warmup=2,
                                     end=6, end_factor=0.1, stop_at=5)
    assert values(schedule, range(7)) == pytest.approx([
        0.0, 2 * 0.5, 2.0, 2 * (0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2),
        2 * 0.55, 0.0, 0.0
    ])
    no_stop = DistillWeightSchedule(policy='linear', factor=2.0, warmup=2,
                                    end=6, end_factor=0.1)
    assert values(no_stop, [1, 4, 6]) == pytest.approx([1.0, 1.1, 0.2])


@pytest.mark.parametrize('kwargs, match', [
    (dict(policy='exp'), r"policy must be one of \(.*\), got 'exp'"),
    (dict(policy='cosine', milestones=[2]), 'milestones applies to the step'),
    (dict(policy='step'), 'needs `milestones`'),
    (dict(policy='constant', end=5), 'end applies to the linear and cosine'),
    (dict(policy='linear', begin=5, end=5), r'end \(5\) must be greater'),
    (dict(factor=-1.0), 'factor must be a finite number >= 0'),
    (dict(stop_at=-1), 'stop_at must be a non-negative integer'),
    (dict(warmup=1.5), 'warmup must be a non-negative integer'),
])
def test_bad_schedules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillWeightSchedule(**kwargs)


def test_decay_needs_an_end():
    schedule = DistillWeightSchedule(policy='linear', warmup=10)
    with pytest.raises(ValueError, match='needs `end` or the length'):
        schedule(3)
    with pytest.raises(ValueError, match='empty range'):
        schedule(3, max_steps=8)
