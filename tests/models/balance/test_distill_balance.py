"""Tests for :mod:`sea_kd.models.balance`: the factor update against values
computed by hand, convergence into the band on toy problems whose gradients
are known in closed form, state through checkpoints, DDP, and the distiller
with balancing (teacher untouched, logs, AMP, schedules, the guard)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmdet.registry import MODELS
from torch import nn

from sea_kd.models.balance import (GradientShareBalance, LossRatioBalance,
                                   build_balance, updated_factors)

from ...conftest import build, make_batch, tiny_detector_cfg


# ------------------------------------------------------------ the update
def _update(f, det, own, target, **kw):
    options = dict(tolerance=0.1, max_step=2.0, min_factor=1e-3,
                   max_factor=1e3)
    options.update(kw)
    new, share = updated_factors(
        torch.tensor([f]), torch.tensor([det]), torch.tensor([own]),
        torch.tensor([target]), **options)
    return new.item(), share.item()


def test_update_against_hand_computed_values():
    # share 0.01 / 1.01; ideal 0.1 / (0.9 * 0.01) = 11.1: one step, x2
    new, share = _update(1.0, 1.0, 0.01, 0.1)
    assert share == pytest.approx(0.01 / 1.01)
    assert new == pytest.approx(2.0)
    # ideal 0.1 / (0.9 * 0.08) = 1.3889, within one step: taken exactly
    new, _ = _update(1.0, 1.0, 0.08, 0.1)
    assert new == pytest.approx(0.1 / (0.9 * 0.08))
    # too strong: ideal 0.1 * 2 / (0.9 * 10) = 0.0222 -> halved only
    new, share = _update(1.0, 2.0, 10.0, 0.1)
    assert share == pytest.approx(10 / 12)
    assert new == pytest.approx(0.5)
    # in the band (share 0.0999 vs 0.1 +- 0.01): kept
    new, share = _update(10.0, 1.0, 0.0111, 0.1)
    assert share == pytest.approx(0.111 / 1.111)
    assert new == 10.0
    # bounds
    assert _update(900.0, 1.0, 1e-9, 0.1)[0] == 1e3
    # nothing measured: kept, share nan
    new, share = _update(3.0, 1.0, 0.0, 0.1)
    assert new == 3.0 and math.isnan(share)
    new, share = _update(3.0, float('nan'), 1.0, 0.1)
    assert new == 3.0 and math.isnan(share)


# ----------------------------------------------------- toy problems
class Toy(nn.Module):
    """Losses linear in the parameters: ``det = c_det . w``,
    ``kd_<i> = c_i . w[reach_i]``, so each gradient is a known constant."""

    def __init__(self, n=6):
        super().__init__()
        self.w = nn.Parameter(torch.ones(n))
        self.v = nn.Parameter(torch.ones(n))  # reached by det only

    def losses(self, c_det, terms):
        det = dict(loss_cls=(c_det * self.w).sum() + self.v.sum())
        distill = {name: (c * self.w).sum() for name, c in terms.items()}
        return det, distill


def _run(balance, toy, c_det, terms, steps):
    history = []
    for _ in range(steps):
        det, distill = toy.losses(c_det, terms)
        balance.observe(distill, det, toy)
        history.append(dict(balance.factors))
    return history


def test_gradient_share_moves_in_bounded_steps_and_stops_in_the_band():
    toy = Toy()
    c_det = torch.full((6, ), 1.0)
    c_kd = torch.full((6, ), 0.001)
    balance = GradientShareBalance(target=0.1, interval=1)
    balance.bind(['kd'])
    history = [h['kd'] for h in _run(balance, toy, c_det,
                                     {'kd_feat': c_kd}, 12)]
    # computed independently: d = 6 (w's part of the det gradient; v is not
    # reached by kd), a = 0.006, the factor that meets the target
    ideal = 0.1 * 6.0 / (0.9 * 0.006)
    steps = [b / a for a, b in zip([1.0] + history, history)]
    assert all(s <= 2.0 + 1e-9 for s in steps)
    assert history[:6] == pytest.approx([2, 4, 8, 16, 32, 64])
    assert history[6] == pytest.approx(ideal)  # 111.1: within one step
    assert history[7:] == pytest.approx([ideal] * 5)  # stays in the band
    share = ideal * 0.006 / (6.0 + ideal * 0.006)
    assert balance.shares['kd'] == pytest.approx(share)
    assert abs(balance.shares['kd'] - 0.1) <= 0.01


def test_two_methods_are_balanced_separately():
    toy = Toy()
    balance = GradientShareBalance(target=0.1, targets=dict(b=0.3),
                                   interval=1, max_step=1e6)
    balance.bind(['a', 'b'])
    terms = {'a_x': torch.full((6, ), 0.01), 'b_y': torch.full((6, ), 5.0)}
    _run(balance, toy, torch.ones(6), terms, 3)
    # each meets its own target: f = t d / ((1 - t) a), d = 6
    assert balance.factors['a'] == pytest.approx(0.1 * 6 / (0.9 * 0.06))
    assert balance.factors['b'] == pytest.approx(0.3 * 6 / (0.7 * 30))


def test_a_group_of_terms_gets_a_factor_and_a_target_of_its_own():
    """``groups`` takes LD's ``kd`` term out of LD's group: each group meets
    its own target from its own gradient (computed by hand below)."""
    toy = Toy()
    terms = {'ld_main': torch.full((6, ), 0.01),
             'ld_kd': torch.full((6, ), 2.0)}
    balance = GradientShareBalance(target=0.5, groups=dict(kdpart=['ld_kd']),
                                   targets=dict(kdpart=0.2), interval=1,
                                   max_step=1e6)
    balance.bind(['ld'])
    assert balance.group_names == ('ld', 'kdpart')
    _run(balance, toy, torch.ones(6), terms, 1)
    # d = 6 over w for both; a: main 0.06, kd 12; f = t d / ((1 - t) a)
    assert balance.factors['ld'] == pytest.approx(0.5 * 6 / (0.5 * 0.06))
    assert balance.factors['kdpart'] == pytest.approx(0.2 * 6 / (0.8 * 12))
    assert balance.factor_of('ld_main') == balance.factors['ld']
    assert balance.factor_of('ld_kd') == balance.factors['kdpart']
    assert set(balance.shares) == {'ld', 'kdpart'}
    # without the group, one factor for both: a = 12.06
    whole = GradientShareBalance(target=0.5, interval=1, max_step=1e6)
    whole.bind(['ld'])
    _run(whole, Toy(), torch.ones(6), terms, 1)
    assert whole.factors == pytest.approx(dict(ld=0.5 * 6 / (0.5 * 12.06)))


@pytest.mark.parametrize('kind', [GradientShareBalance, LossRatioBalance])
def test_a_group_that_takes_every_term_of_its_method(kind):
    """The method's own group is then empty: measured as nothing, its
    factor stays 1 and no share is logged for it; the loss ratio's running
    sums have a slot per group."""
    balance = kind(target=0.5, groups=dict(own=['kd_x']), interval=1,
                   max_step=1e6)
    balance.bind(['kd'])
    _run(balance, Toy(), torch.ones(6), {'kd_x': torch.full((6, ), 0.5)}, 2)
    assert balance.factors['kd'] == 1.0 and 'kd' not in balance.shares
    assert balance.factors['own'] != 1.0 and 'own' in balance.shares
    assert balance.factor.shape == (2, )


@pytest.mark.parametrize('groups, error, match', [
    (['ld_kd'], TypeError, r'groups must be a dict \{group: \[term'),
    (dict(g='ld_kd'), TypeError, r"groups\['g'\] must be a non-empty list"),
    (dict(g=[]), TypeError, r"groups\['g'\] must be a non-empty list"),
    (dict(g=['kd']), TypeError, "named '<method>_<term>'"),
    (dict(loss_g=['ld_kd']), ValueError, 'without "loss"'),
    (dict(g=['ld_kd'], h=['ld_kd']), ValueError,
     "'ld_kd' in the groups 'g' and 'h'"),
    (dict(g=['ld_kd', 'ld_kd']), ValueError, "'ld_kd' twice in the group"),
])
def test_bad_groups_are_refused_at_build(groups, error, match):
    with pytest.raises(error, match=match):
        build_balance(dict(type='GradientShareBalance', groups=groups))


def test_a_state_saved_with_other_groups_is_refused():
    """Groups of the same number but other names or terms would give the
    saved factors to other terms: loading says so."""
    def bound(groups):
        balance = GradientShareBalance(groups=groups)
        balance.bind(['ld'])
        return balance
    saved = bound(dict(g=['ld_kd'])).state_dict()
    bound(dict(g=['ld_kd'])).load_state_dict(saved)  # the same groups
    for other in (dict(h=['ld_kd']), dict(g=['ld_main'])):
        with pytest.raises(ValueError,
                           match='saved with other balance groups'):
            bound(other).load_state_dict(saved)


def test_groups_that_name_no_method_or_term_are_refused():
    balance = GradientShareBalance(groups=dict(g=['sea_rel']))
    with pytest.raises(KeyError, match=r"no method of the distiller is "
                       r"named 'sea'; the methods are \['ld'\]"):
        balance.bind(['ld'])
    with pytest.raises(ValueError, match=r"groups \['ld'\] are named as "
                       'methods'):
        GradientShareBalance(groups=dict(ld=['ld_kd'])).bind(['ld'])
    with pytest.raises(KeyError, match=r"\['x'\], but the distiller's "
                       r"methods are \['ld'\] and the groups \['g'\]"):
        GradientShareBalance(groups=dict(g=['ld_kd']),
                             targets=dict(x=0.5)).bind(['ld'])
    # the method exists but never computes the term: the first step says so
    balance = GradientShareBalance(groups=dict(g=['ld_kdd']), interval=1)
    balance.bind(['ld'])
    with pytest.raises(KeyError, match=r"terms \['ld_kdd'\], which no "
                       r"method computed; the terms are \['ld_kd'\]"):
        _run(balance, Toy(), torch.ones(6), {'ld_kd': torch.ones(6)}, 1)


def test_gradient_is_measured_on_the_parameter_tensors_a_term_reaches():
    """The detection gradient is summed over the parameter tensors the term
    reaches (``w``), not over those it does not (``v``)."""
    balance = GradientShareBalance(target=0.5, interval=1, max_step=1e6)
    balance.bind(['kd'])
    _run(balance, Toy(), torch.full((6, ), 2.0), {'kd_x': torch.ones(6)}, 1)
    # d = |2| * 6 over w (v's 6 left out), a = 6 -> f = 0.5 * 12 / (0.5 * 6)
    assert balance.factors['kd'] == pytest.approx(2.0)


def test_cosine_to_the_detection_gradient_is_logged_on_request():
    """``log_cosine`` logs the cosine between a group's gradient and the
    detection gradient over the tensors the group reaches (``w``; ``v``,
    reached by the detection loss only, is left out), computed by hand."""
    c_det = torch.tensor([1., 2., 3., 4., 5., 6.])
    terms = {'kd_x': torch.tensor([1., -1., 2., 0., 0., 0.]),
             'ab_y': -torch.tensor([1., 2., 3., 4., 5., 6.])}
    balance = GradientShareBalance(target=0.5, interval=1, log_cosine=True)
    balance.bind(['kd', 'ab'])
    _run(balance, Toy(), c_det, terms, 1)
    logged = balance.log_values(torch.device('cpu'))
    # (1 - 2 + 6) / (sqrt(1 + 1 + 4) * sqrt(1 + 4 + 9 + 16 + 25 + 36))
    assert logged['balance_cos_kd'].item() == pytest.approx(5 / 546**0.5)
    assert logged['balance_cos_ab'].item() == pytest.approx(-1.0)
    # the factors are those of the same run without the cosine
    plain = GradientShareBalance(target=0.5, interval=1)
    plain.bind(['kd', 'ab'])
    _run(plain, Toy(), c_det, terms, 1)
    assert plain.factors == balance.factors
    assert not any('cos' in k for k in plain.log_values(torch.device('cpu')))


def test_cosine_of_a_group_without_gradient_is_not_logged():
    """A group whose terms carry no gradient this step, or a step with no
    terms at all (the teacher skipped), logs no cosine (nan is not
    logged), and the factors keep their values."""
    balance = GradientShareBalance(target=0.5, interval=1, log_cosine=True)
    balance.bind(['kd', 'ab'])
    toy = Toy()
    det, distill = toy.losses(torch.ones(6), {'kd_x': torch.ones(6)})
    distill['ab_y'] = torch.zeros(())  # no graph
    balance.observe(distill, det, toy)
    logged = balance.log_values(torch.device('cpu'))
    assert 'balance_cos_kd' in logged and 'balance_cos_ab' not in logged
    balance.observe(None, None, None)  # due, nothing measured: no vote
    logged = balance.log_values(torch.device('cpu'))
    assert not any('cos' in k for k in logged)
    assert balance.factors['ab'] == 1.0


class TwoTensors(nn.Module):
    """Two parameter tensors, both reached by the detection loss and the
    term, with gradients known in closed form."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones(2))
        self.q = nn.Parameter(torch.ones(3))

    def losses(self):
        det = dict(loss_cls=(torch.tensor([1., 0.]) * self.p).sum() +
                   (torch.tensor([0., 3., 4.]) * self.q).sum())
        kd = (torch.tensor([2., 0.]) * self.p).sum() + \
            (torch.tensor([0., 4., -3.]) * self.q).sum()
        return det, {'kd_x': kd}


def test_cosine_is_taken_over_all_tensors_at_once():
    """One cosine over the tensors together, not a mean of per-tensor
    cosines: here (1 * 2 + 3 * 4 - 4 * 3) / (sqrt(26) * sqrt(29)), while
    the per-tensor cosines are 1 and 0."""
    model = TwoTensors()
    balance = GradientShareBalance(target=0.5, interval=1, log_cosine=True)
    balance.bind(['kd'])
    det, distill = model.losses()
    balance.observe(distill, det, model)
    cos = balance.log_values(torch.device('cpu'))['balance_cos_kd'].item()
    assert cos == pytest.approx(2 / (26 * 29)**0.5)


def test_cosine_is_averaged_over_the_ranks_that_have_it(monkeypatch):
    """In a distributed run a rank on which a group has no gradient sends
    no cosine; the others' mean is logged (not nan, not halved)."""
    from sea_kd.models.balance import distill_balance

    def two_ranks(stats, op):  # this rank, and one that measured no cosine
        other = stats.clone()
        g = 1
        other[2 * g:3 * g] = 0.0  # its nan, sent as 0 ...
        other[3 * g:4 * g] = 0.0  # ... and not counted
        stats.copy_((stats + other) / 2)
    monkeypatch.setattr(distill_balance, 'all_reduce', two_ranks)
    balance = GradientShareBalance(target=0.5, interval=1, log_cosine=True)
    balance.bind(['kd'])
    model = TwoTensors()
    det, distill = model.losses()
    balance.observe(distill, det, model)
    cos = balance.log_values(torch.device('cpu'))['balance_cos_kd'].item()
    assert cos == pytest.approx(2 / (26 * 29)**0.5)


def test_cosine_is_not_kept_through_a_load():
    """The cosine is a diagnostic of the last update, not state: after a
    load it is not logged until the next update."""
    balance = GradientShareBalance(target=0.5, interval=1, log_cosine=True)
    balance.bind(['kd'])
    model = TwoTensors()
    det, distill = model.losses()
    balance.observe(distill, det, model)
    assert 'balance_cos_kd' in balance.log_values(torch.device('cpu'))
    balance.load_state_dict(balance.state_dict())
    logged = balance.log_values(torch.device('cpu'))
    assert 'balance_cos_kd' not in logged and 'balance_share_kd' in logged


def test_a_measure_with_the_wrong_number_of_statistics_is_refused():
    class Wrong(GradientShareBalance):
        @property
        def extra_statistics(self):
            return ('cos', 'more')

    balance = Wrong(target=0.5, interval=1, log_cosine=True)
    balance.bind(['kd'])
    model = TwoTensors()
    det, distill = model.losses()
    with pytest.raises(ValueError, match='returned 3 statistics; it must '
                       r"return 2 plus one per name of extra_statistics"):
        balance.observe(distill, det, model)


def test_loss_ratio_uses_the_mean_loss_over_the_interval():
    balance = LossRatioBalance(target=0.5, interval=2, max_step=1e6)
    balance.bind(['kd'])
    for det, kd in ((1.0, 0.1), (3.0, 0.3)):
        balance.observe({'kd_x': torch.tensor(kd)},
                        dict(loss_cls=torch.tensor(det),
                             acc=torch.tensor(99.0)), nn.Linear(1, 1))
    # means: det 2.0, kd 0.2 -> f = 0.5 * 2 / (0.5 * 0.2) = 10
    assert balance.factors['kd'] == pytest.approx(10.0)
    assert balance.shares['kd'] == pytest.approx(0.2 / 2.2)


def test_update_schedule_interval_and_start():
    balance = LossRatioBalance(target=0.5, interval=3, start=2, max_step=4)
    balance.bind(['kd'])
    seen = []
    for _ in range(8):
        balance.observe({'kd_x': torch.tensor(0.01)},
                        dict(loss_cls=torch.tensor(1.0)), nn.Linear(1, 1))
        seen.append(balance.factors['kd'])
    assert seen == [1, 4, 4, 4, 16, 16, 16, 64]  # updates at 2, 5, 8


@pytest.mark.parametrize('kind', [GradientShareBalance, LossRatioBalance])
def test_resume_gives_the_factors_of_a_straight_run(kind):
    """Terms that change every step, and a checkpoint in the middle of an
    interval: the running sums must come back too."""
    def steps(balance, first, last):
        toy = Toy()
        for i in range(first, last):
            det, distill = toy.losses(torch.full((6, ), 1.0 + 0.3 * i),
                                      {'kd_x': torch.full((6, ),
                                                          0.002 * (i + 1))})
            balance.observe(distill, det, toy)

    def fresh():
        balance = kind(interval=3, max_step=1e6)
        balance.bind(['kd'])
        return balance

    straight = fresh()
    steps(straight, 0, 10)
    first = fresh()
    steps(first, 0, 4)  # mid-interval: one step into the second window
    saved = copy.deepcopy(first.state_dict())
    assert {'factor', 'share', 'step'} <= set(saved)
    assert all(isinstance(v, torch.Tensor) for v in saved.values())
    resumed = fresh()
    resumed.load_state_dict(saved)
    steps(resumed, 4, 10)
    assert resumed.step.item() == straight.step.item() == 10
    assert resumed.factors == straight.factors
    assert resumed.shares == straight.shares
    assert resumed.factors['kd'] != 1.0
    # without the running state the factors differ (the test can fail)
    if kind is LossRatioBalance:
        broken = fresh()
        broken.load_state_dict(dict(saved, window_sum=torch.zeros(2),
                                    window_count=torch.tensor(0)))
        steps(broken, 4, 10)
        assert broken.factors != straight.factors


# ---------------------------------------------------------------- options
@pytest.mark.parametrize('cfg, error, match', [
    (dict(type='GradientShareBalance', target=1.0), ValueError,
     'strictly between 0 and 1'),
    (dict(type='GradientShareBalance', target=0), ValueError,
     'strictly between 0 and 1'),
    (dict(type='LossRatioBalance', targets=dict(fi=-0.1)), ValueError,
     r"targets\['fi'\]"),
    (dict(type='GradientShareBalance', targett=0.1), TypeError,
     r"no option \['targett'\]; its options are"),
    (dict(type='GradShare'), KeyError, 'the balances are'),
    (dict(type='LossRatioBalance', max_step=1.0), ValueError,
     'max_step must be a finite number > 1.0'),
    (dict(type='LossRatioBalance', interval=0), ValueError,
     'interval must be an integer >= 1'),
    (dict(type='LossRatioBalance', min_factor=2.0), ValueError,
     'min_factor <= 1 <= max_factor'),
    ('GradientShareBalance', TypeError, 'must be a config dict'),
    (dict(type='GradientShareBalance', log_cosine='yes'), TypeError,
     'log_cosine must be True or False'),
    (dict(type='LossRatioBalance', log_cosine=True), TypeError,
     r"no option \['log_cosine'\]"),
])
def test_bad_options_are_refused_with_the_fix(cfg, error, match):
    with pytest.raises(error, match=match):
        build_balance(cfg)


# ------------------------------------------------------------ distiller
@pytest.fixture
def fi_cfg(save_state):
    torch.manual_seed(0)
    student = tiny_detector_cfg('retinanet', base_channels=8,
                                neck_channels=16)
    teacher = tiny_detector_cfg('retinanet', base_channels=8,
                                neck_channels=32)
    return dict(type='Distiller', student=student, teacher=teacher,
                teacher_ckpt=save_state(build(teacher), 'teacher.pth'),
                methods=[dict(type='FeatureImitation')])


def _distiller(cfg, **kwargs):
    model = MODELS.build(copy.deepcopy(dict(cfg, **kwargs)))
    model.init_weights()
    return model.train()


def test_keys_that_name_no_method_are_refused_at_build(fi_cfg):
    with pytest.raises(KeyError,
                       match=r"\['sea'\], but the distiller's methods are "
                       r"\['fi'\]"):
        _distiller(fi_cfg, balance=dict(type='GradientShareBalance',
                                        targets=dict(sea=0.2)))


def test_distiller_applies_logs_and_saves_the_factor(fi_cfg):
    model = _distiller(fi_cfg, balance=dict(
        type='GradientShareBalance', target=0.3, interval=1, max_step=1e6,
        log_cosine=True))
    inputs, samples = make_batch(model)
    torch.manual_seed(1)
    raw = model.distill_losses_from  # the unbalanced terms, recorded
    seen = {}

    def recording(record):
        seen.update(raw(record))
        return seen
    model.distill_losses_from = recording
    model.set_distill_loss_scale(0.5)
    losses = model.loss(inputs, samples)
    factor = model.balance.factors['fi']
    assert factor != 1.0
    # balance factor times the schedule's scale
    assert losses['loss_fi_feat'].item() == pytest.approx(
        seen['fi_feat'].item() * 0.5 * factor, rel=1e-5)
    assert losses['balance_factor_fi'].item() == pytest.approx(factor)
    assert 0 < losses['balance_share_fi'].item() < 1
    assert -1 <= losses['balance_cos_fi'].item() <= 1
    state = model.state_dict()
    assert state['balance.factor'].tolist() == [factor]
    assert state['balance.step'].item() == 1
    total, _ = model.parse_losses(losses)
    without_logs = {k: v for k, v in losses.items()
                    if not k.startswith('balance_')}
    assert total.item() == pytest.approx(
        model.parse_losses(without_logs)[0].item(), rel=1e-6)
    # the logged factor, share and cosine are not summed into the loss


def test_distiller_applies_and_logs_a_group_factor(fi_cfg):
    model = _distiller(fi_cfg, balance=dict(
        type='GradientShareBalance', target=0.3, interval=1, max_step=1e6,
        groups=dict(fifeat=['fi_feat'])))
    inputs, samples = make_batch(model)
    raw = model.distill_losses_from
    seen = {}

    def recording(record):
        seen.update(raw(record))
        return seen
    model.distill_losses_from = recording
    losses = model.loss(inputs, samples)
    factor = model.balance.factors['fifeat']
    assert factor != 1.0 and model.balance.factors['fi'] == 1.0
    assert losses['loss_fi_feat'].item() == pytest.approx(
        seen['fi_feat'].item() * factor, rel=1e-5)
    assert losses['balance_factor_fifeat'].item() == pytest.approx(factor)
    assert 'balance_share_fifeat' in losses
    assert 'balance_share_fi' not in losses  # nothing left in fi's group
    state = model.state_dict()
    assert state['balance.factor'].tolist() == [1.0, factor]
    # a checkpoint saved with other groups does not fit (resume refuses it)
    from sea_kd.utils.checkpoint_loading import check_state_dict_matches
    other = _distiller(fi_cfg, balance=dict(type='GradientShareBalance'))
    with pytest.raises(RuntimeError, match=r'balance\.factor: checkpoint '
                       r'\(2,\) vs model \(1,\)'):
        check_state_dict_matches(other, state, 'x.pth', 'resume')


def test_measuring_takes_student_gradients_only_and_accumulates_none(
        fi_cfg, monkeypatch):
    """The measuring backwards ask for the student's parameters only (no
    teacher or adapter gradient is taken) and accumulate nothing: ``.grad``
    stays empty until the step's own backward."""
    model = _distiller(fi_cfg, balance=dict(type='GradientShareBalance',
                                            interval=1))
    student = {id(p) for p in model.student.parameters()}
    asked = []
    grad = torch.autograd.grad

    def recording(outputs, inputs, *args, **kwargs):
        asked.append([id(p) for p in inputs])
        return grad(outputs, inputs, *args, **kwargs)
    monkeypatch.setattr(torch.autograd, 'grad', recording)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert len(asked) == 2  # the detection loss, then the one method
    assert all(set(ids) <= student and ids for ids in asked)
    assert all(p.grad is None for p in model.parameters())
    total, _ = model.parse_losses(losses)
    total.backward()
    assert any(p.grad is not None for p in model.student.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())


def test_under_bf16_autocast_the_shares_match_float32():
    """Losses computed under bfloat16 autocast (the student's forward) with
    float32 terms (as the distiller computes them): the measured share is
    the float32 one up to bfloat16's precision."""
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x, target = torch.randn(32, 8), torch.randn(32, 16)
    shares = []
    for dtype in (torch.float32, torch.bfloat16):
        balance = GradientShareBalance(target=0.3, interval=1)
        balance.bind(['kd'])
        with torch.autocast('cpu', dtype=dtype,
                            enabled=dtype != torch.float32):
            hidden = student[1](student[0](x))
            det = dict(loss_cls=student[2](hidden).pow(2).mean())
        kd = dict(kd_x=(hidden.float() - target).pow(2).mean())
        balance.observe(kd, det, student)
        shares.append(balance.shares['kd'])
        assert math.isfinite(balance.factors['kd'])
    assert shares[1] == pytest.approx(shares[0], rel=0.05)


def test_the_guard_still_names_a_nonfinite_term(fi_cfg):
    from sea_kd.models.distillers import NonFiniteDistillLossError
    model = _distiller(fi_cfg, balance=dict(type='GradientShareBalance',
                                            interval=1))
    inputs, samples = make_batch(model)
    with torch.no_grad():
        model.methods['fi'].adapters[1].conv.weight.fill_(1e30)
    with pytest.raises(NonFiniteDistillLossError, match='loss_fi_feat=inf'):
        model.loss(inputs, samples)
    assert model.balance.factors['fi'] == 1.0  # nothing learnt from it


# -------------------------------------------------------------------- DDP
def _ddp_worker(rank, store, out):
    dist.init_process_group('gloo', init_method=f'file://{store}',
                            rank=rank, world_size=2)
    try:
        toy = Toy()
        balance = GradientShareBalance(target=0.1, interval=1,
                                       max_step=1e6)
        balance.bind(['kd'])
        # each rank sees other data: det gradient 1 or 3 per weight
        _run(balance, toy, torch.full((6, ), 1.0 + 2 * rank),
             {'kd_x': torch.full((6, ), 0.01 * (rank + 1))}, 1)
        torch.save(balance.factors, f'{out}.{rank}')
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_get_the_same_factor(tmp_path):
    out = tmp_path / 'factors'
    mp.spawn(_ddp_worker, args=(str(tmp_path / 'store'), str(out)),
             nprocs=2, join=True)
    factors = [torch.load(f'{out}.{rank}') for rank in range(2)]
    assert factors[0] == factors[1]
    # from the statistics averaged over ranks: d = 6 * 2, a = 6 * 0.015
    assert factors[0]['kd'] == pytest.approx(0.1 * 12 / (0.9 * 0.09))


def test_state_is_tensors_for_mmengine_broadcast_and_ema(fi_cfg):
    """mmengine broadcasts every ``state_dict()`` value at the start of a
    distributed run, and EMAHook with ``update_buffers=True`` averages
    them: the balance's state must be tensors like any other."""
    from mmdet.models.layers import ExpMomentumEMA

    from sea_kd.utils.checkpoint_loading import check_state_dict_matches
    model = _distiller(fi_cfg, balance=dict(type='LossRatioBalance',
                                            interval=1))
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)
    state = model.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    check_state_dict_matches(model, state, 'x.pth', 'resume')
    ema = ExpMomentumEMA(model, momentum=0.5, update_buffers=True)
    ema.update_parameters(model)
    model.loss(inputs, samples)
    ema.update_parameters(model)  # the second update averages
    assert ema.module.balance.step.item() == 1  # integers are not averaged


def test_a_skipped_teacher_step_still_counts(fi_cfg):
    """Every rank counts every step, also one that skips the teacher (a
    stopped schedule), so due updates stay in step across ranks."""
    model = _distiller(fi_cfg, balance=dict(type='LossRatioBalance',
                                            interval=2))
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)  # step 1: terms known
    model.set_distill_loss_scale(0.0)
    losses = model.loss(inputs, samples)  # step 2: the teacher is skipped
    assert model.balance.step.item() == 2
    assert model.balance.factors == {'fi': 1.0}  # no statistics: no update
    assert 'balance_factor_fi' in losses


def test_ddp_training_steps_with_balancing(fi_cfg, tmp_path):
    """Through the CPU DDP wrapper's train_step: the measuring backwards run
    inside the wrapped forward without upsetting DDP's reduction."""
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import OptimWrapper

    from sea_kd.compat import CPUCompatibleDistributedDataParallel
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        model = _distiller(fi_cfg, balance=dict(
            type='GradientShareBalance', target=0.1, interval=1))
        wrapped = CPUCompatibleDistributedDataParallel(model)
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
        packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2,
                                num_items=[3, 3], num_classes=3)
        for _ in range(3):
            log = wrapped.train_step(copy.deepcopy(packed), optim)
        assert model.balance.step.item() == 3
        assert 'balance_factor_fi' in log and 'balance_share_fi' in log
        assert model.balance.factors['fi'] != 1.0
    finally:
        dist.destroy_process_group()
