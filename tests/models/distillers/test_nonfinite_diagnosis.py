"""The non-finite guard through a real mmengine Runner on generated data."""
import pytest
import torch
from mmengine.hooks import Hook

from sea_kd.models.distillers import NonFiniteDistillLossError

from ...runner_helpers import (distiller_runner, logged_scalars,
                               tiny_fi_on_generated_data)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    return tiny_fi_on_generated_data(tmp_path_factory.mktemp('data'), seed=2)


class PoisonFrom(Hook):
    """Make the feature loss NaN from the 1-based iteration ``at`` on."""
    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 >= self.at:
            runner.model.methods['fi'].loss_feat.loss_weight = \
                float('nan')


def test_a_nan_distillation_loss_stops_training_naming_term_and_iteration(
        setup, tmp_path):
    root, model = setup
    runner = distiller_runner(str(tmp_path), root, model, 2)
    runner.register_hook(PoisonFrom(2))
    with pytest.raises(NonFiniteDistillLossError) as err:
        runner.train()
    text = str(err.value)
    assert 'at training iteration 2 (runner.iter 1)' in text
    assert 'loss_fi_feat=nan' in text
    assert 'img_path=' in text and 'GT boxes' in text


def test_skip_mode_keeps_training_and_counts_the_skipped_steps(
        setup, tmp_path):
    root, model = setup
    runner = distiller_runner(str(tmp_path), root,
                              dict(model, nonfinite_loss='skip'), 3)
    runner.register_hook(PoisonFrom(2))
    runner.train()
    scalars = logged_scalars(str(tmp_path), runner)
    assert [s['loss_fi_feat'] for s in scalars][1:] == [0.0, 0.0]
    assert scalars[0]['loss_fi_feat'] > 0
    assert all(torch.isfinite(torch.tensor(s['loss'])) for s in scalars)
    assert 'distill_skipped_steps' not in scalars[0]
    assert [s['distill_skipped_steps'] for s in scalars[1:]] == [1, 2]
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
