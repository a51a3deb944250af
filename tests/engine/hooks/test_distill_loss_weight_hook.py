"""DistillLossWeightHook under a real mmengine Runner on generated data."""
import pytest
from mmengine.hooks import Hook

from sea_kd.engine import DistillLossWeightHook

from ...runner_helpers import (distiller_runner, logged_scalars,
                               tiny_fi_on_generated_data)

# warm-up 0.5 -> 1 over 2 iterations, linear decay from iteration 2 to 4
# (end_factor 0), distillation stops after 3 iterations
HOOK = dict(type='DistillLossWeightHook', by_epoch=False, warmup=2,
            warmup_start_factor=0.5, policy='linear', end=4, stop_at=3)
EXPECTED = [0.5, 0.75, 1.0, 0.0]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    return tiny_fi_on_generated_data(
        tmp_path_factory.mktemp('data'), seed=1,
        loss_feat=dict(type='FeatureMSELoss', loss_weight=1.0))


class Recorder(Hook):
    """What each iteration applied: factor, loss terms, teacher runs."""
    priority = 'LOWEST'

    def __init__(self):
        self.rows = []
        self.teacher_calls = []

    def before_train(self, runner):
        teacher = runner.model.teacher
        extract = teacher.extract_feat

        def counting(*args, **kwargs):
            self.teacher_calls.append(runner.iter)
            return extract(*args, **kwargs)

        teacher.extract_feat = counting

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.rows.append(dict(
            iter=runner.iter,
            scale=runner.model.distill_loss_scale,
            logged=runner.message_hub.get_scalar(
                'train/distill_weight_factor').current(),
            feat=float(outputs['loss_fi_feat'].detach())))


def train(setup, work_dir, max_iters, hook=HOOK, **kwargs):
    root, model = setup
    runner = distiller_runner(str(work_dir), root, model, max_iters,
                              custom_hooks=[hook], **kwargs)
    recorder = Recorder()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder


def test_the_factor_is_applied_logged_and_stops_distillation(setup,
                                                            tmp_path):
    runner, recorder = train(setup, tmp_path, 4)
    assert [r['iter'] for r in recorder.rows] == [0, 1, 2, 3]
    assert [r['scale'] for r in recorder.rows] == pytest.approx(EXPECTED)
    assert [r['logged'] for r in recorder.rows] == pytest.approx(EXPECTED)
    feats = [r['feat'] for r in recorder.rows]
    assert all(f > 0 for f in feats[:3]) and feats[3] == 0.0
    # stopped at the 4th iteration: the teacher ran for the first three only
    assert recorder.teacher_calls == [0, 1, 2]
    scalars = logged_scalars(str(tmp_path), runner)
    assert [s['distill_weight_factor'] for s in scalars
            ] == pytest.approx(EXPECTED)
    assert [s['step'] for s in scalars] == [1, 2, 3, 4]


def test_resume_continues_with_the_factor_of_a_straight_run(setup,
                                                           tmp_path):
    _, straight = train(setup, tmp_path / 'straight', 4)
    work = tmp_path / 'resumed'
    train(setup, work, 2, ckpt_interval=2)
    assert (work / 'iter_2.pth').exists()
    runner, resumed = train(setup, work, 4, resume=True)
    assert [r['iter'] for r in resumed.rows] == [2, 3]
    for key in ('scale', 'logged', 'feat'):
        assert [r[key] for r in resumed.rows] == pytest.approx(
            [r[key] for r in straight.rows[2:]]), key
    assert [s['distill_weight_factor'] for s in logged_scalars(
        str(work), runner)] == pytest.approx(EXPECTED[2:])
    assert resumed.teacher_calls == [2]


def test_a_model_that_is_not_a_distiller_is_refused(setup, tmp_path):
    root, model = setup
    runner = distiller_runner(str(tmp_path), root, model['student'], 1,
                              custom_hooks=[HOOK])
    with pytest.raises(TypeError, match='DistillLossWeightHook scales .* '
                       'the model is a RetinaNet. Use the hook only with '
                       'sea_kd distillers'):
        runner.train()


def test_by_epoch_with_an_iteration_loop_is_refused(setup, tmp_path):
    root, model = setup
    runner = distiller_runner(str(tmp_path), root, model, 1, custom_hooks=[
        dict(type='DistillLossWeightHook', policy='cosine')])
    with pytest.raises(ValueError, match='by_epoch=True but the train loop '
                       'is iteration-based'):
        runner.train()


def test_bad_hook_configs():
    with pytest.raises(ValueError,
                       match=r"DistillLossWeightHook: policy must be one of "
                       r"\(.*\), got 'exp'"):
        DistillLossWeightHook(policy='exp')
    with pytest.raises(TypeError, match=r"term_schedules\['rel'\]"):
        DistillLossWeightHook(term_schedules=dict(rel=dict(polcy='step')))


def test_term_schedules_multiply_the_global_factor(setup, tmp_path):
    hook = dict(type='DistillLossWeightHook', by_epoch=False, factor=0.5,
                term_schedules=dict(loss_fi_feat=dict(policy='step',
                                                      milestones=[1])))
    runner, recorder = train(setup, tmp_path, 2, hook=hook)
    scalars = logged_scalars(str(tmp_path), runner)
    assert [s['distill_weight_factor_loss_fi_feat'] for s in scalars
            ] == pytest.approx([1.0, 0.1])
    assert runner.model.distill_term_factor('feat') == pytest.approx(0.05)


def test_by_epoch_counts_epochs(setup, tmp_path):
    hook = dict(type='DistillLossWeightHook', policy='step', milestones=[1],
                gamma=0.5)
    root, model = setup
    runner = distiller_runner(str(tmp_path), root, model, 100,
                              custom_hooks=[hook], max_epochs=2)
    recorder = Recorder()
    runner.register_hook(recorder)
    runner.train()
    # 8 images, batch 2: 4 iterations per epoch
    assert [r['scale'] for r in recorder.rows] == [1.0] * 4 + [0.5] * 4
