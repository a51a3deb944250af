import math
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from sea_kd.models.losses import ADLoss

from ...conftest import REPO


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def reference_adl(student, teacher, valid=None, beta=1.0, gamma=2.0,
                  theta=1.8, base='kl', alpha=0.5, temperature=1.0,
                  loss_weight=1.0, normaliser='all'):
    """Per-element loops over rows and classes, the paper's formulas."""
    total, norm = 0.0, 0.0
    for i, (s_row, t_row) in enumerate(zip(student.tolist(),
                                           teacher.tolist())):
        if valid is not None and not valid[i]:
            if normaliser == 'all':
                norm += sum(sigmoid(zt / temperature)**theta for zt in t_row)
            continue
        for zs, zt in zip(s_row, t_row):
            p, q = sigmoid(zs / temperature), sigmoid(zt / temperature)
            kl = q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))
            h = -q * math.log(q) - (1 - q) * math.log(1 - q)
            w = (1 - math.exp(-(kl + beta * h)))**gamma
            if base == 'kl':
                term = kl
            else:
                term = alpha * (-q * math.log(p)) + (1 - alpha) * (
                    -(1 - q) * math.log(1 - p))
            total += w * term
            norm += q**theta
    return loss_weight * temperature**2 * total / max(norm, 1.0)


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    return (torch.randn(7, 4, generator=g, dtype=torch.float64) * 3,
            torch.randn(7, 4, generator=g, dtype=torch.float64) * 3)


@pytest.mark.parametrize('base', ['kl', 'bce'])
@pytest.mark.parametrize('options', [
    dict(),
    dict(beta=0.5, gamma=1.5, theta=1.0, temperature=2.0, loss_weight=3.0),
])
def test_matches_plain_reference(logits, base, options):
    s, t = logits
    loss = ADLoss(base=base, **options)(s, t)
    assert loss.item() == pytest.approx(
        reference_adl(s, t, base=base, **options), rel=1e-9)


def test_bce_base_is_half_weighted_kl_plus_entropy(logits):
    s, t = logits
    # with alpha = 0.5: 0.5 * w * (KL + H); check by building it from parts
    q, p = torch.sigmoid(t), torch.sigmoid(s)
    kl = q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()
    h = -(q * q.log() + (1 - q) * (1 - q).log())
    w = (1 - torch.exp(-(kl + h)))**2
    expected = (0.5 * w * (kl + h)).sum() / q.pow(1.8).sum().clamp(min=1)
    assert ADLoss(base='bce')(s, t).item() == pytest.approx(expected.item(),
                                                             rel=1e-9)


def test_ignored_rows_leave_sum_and_kept_normaliser(logits):
    s, t = logits
    valid = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    kept = ADLoss(normaliser='kept')
    loss = kept(s, t, valid)
    assert loss.item() == pytest.approx(
        reference_adl(s, t, valid, normaliser='kept'), rel=1e-9)
    assert loss.item() == pytest.approx(kept(s[valid], t[valid]).item())
    # changing an ignored row changes nothing
    s2 = s.clone()
    s2[1] += 10
    assert kept(s2, t, valid).item() == pytest.approx(loss.item())


def test_ignored_rows_stay_in_the_default_normaliser(logits):
    """The authors' code sums q^θ over every anchor, ignored ones included:
    the ignored rows' teacher logits change the loss, the student's do
    not."""
    s, t = logits
    valid = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    loss = ADLoss()(s, t, valid)
    assert loss.item() == pytest.approx(reference_adl(s, t, valid),
                                        rel=1e-9)
    assert loss.item() < ADLoss(normaliser='kept')(s, t, valid).item()
    s2, t2 = s.clone(), t.clone()
    s2[1] += 10
    assert ADLoss()(s2, t, valid).item() == pytest.approx(loss.item())
    t2[1] += 10
    assert ADLoss()(s, t2, valid).item() < loss.item()
    with pytest.raises(ValueError,
                       match=r"normaliser must be one of \('all', 'kept'\)"):
        ADLoss(normaliser='valid')


def test_temperature_scales_by_t_squared(logits):
    s, t = logits
    for base in ('kl', 'bce'):
        hot = ADLoss(base=base, temperature=3.0)(s, t)
        unscaled = reference_adl(s, t, base=base, temperature=3.0) / 9.0
        assert hot.item() == pytest.approx(9.0 * unscaled, rel=1e-9)


def authors_adl(student, teacher, ignored):
    """The authors' Detectron loss as released (α = 0.5, γ = 2, β = 1,
    θ = 1.8, T = 1), written from its description, not from ADLoss:
    −w·[α·q·log p + (1−α)·(1−q)·log(1−p)], ignored anchors out of the sum,
    Σ q^θ over every anchor as the normaliser."""
    q, p = torch.sigmoid(teacher), torch.sigmoid(student)
    kl = q * torch.log(q / p) + (1 - q) * torch.log((1 - q) / (1 - p))
    entropy = -q * torch.log(q) - (1 - q) * torch.log(1 - q)
    w = (1 - torch.exp(-kl - entropy))**2
    per_element = -w * (0.5 * q * torch.log(p) + 0.5 * (1 - q) *
                        torch.log(1 - p))
    per_element[ignored] = 0
    return per_element.sum() / torch.clamp(torch.sum(q**1.8), min=1.0)


@pytest.mark.parametrize('config', [
    'configs/adl/adl_retinanet_r101_to_r50_fpn_1x_coco.py',
    'configs/adl/adl_retinanet_r101_to_r50_fpn_2x_coco.py',
    'configs/adl/sad_retinanet_r101_to_r50_fpn_600px-270k_coco-unlabeled.py',
])
def test_coco_configs_reproduce_the_authors_loss(logits, config):
    cfg = Config.fromfile(osp.join(REPO, config))
    assert [m.type for m in cfg.model.methods] == ['ADL']
    loss_fn = MODELS.build(cfg.model.methods[0].loss_adl)
    s, t = logits
    ignored = torch.tensor([0, 1, 0, 0, 1, 0, 0], dtype=torch.bool)
    assert loss_fn(s, t, ~ignored).item() == pytest.approx(
        authors_adl(s, t, ignored).item(), rel=1e-9)


def test_normaliser_is_sum_of_q_power_theta_floored_at_one():
    s = torch.zeros(2, 3, dtype=torch.float64)
    t = torch.full((2, 3), 4.0, dtype=torch.float64)
    q = sigmoid(4.0)
    # θ = 0 makes the normaliser the element count: recover the plain sum
    total = reference_adl(s, t, theta=0.0) * 6
    assert ADLoss()(s, t).item() == pytest.approx(total / (6 * q**1.8),
                                                  rel=1e-9)
    # tiny teacher probabilities: Σ q^θ < 1, so the normaliser is 1
    t = torch.full((2, 3), -6.0, dtype=torch.float64)
    assert 6 * sigmoid(-6.0)**1.8 < 1
    total = reference_adl(s, t, theta=0.0) * 6
    assert ADLoss()(s, t).item() == pytest.approx(total, rel=1e-9)


def test_zero_when_student_equals_teacher(logits):
    s, t = logits
    assert ADLoss()(t.clone(), t).item() == pytest.approx(0.0, abs=1e-12)
    assert ADLoss()(s, t).item() > 0


@pytest.mark.parametrize('base', ['kl', 'bce'])
def test_gradcheck_through_weight_and_base(logits, base):
    s, t = logits
    s = s.clone().requires_grad_(True)
    loss_fn = ADLoss(base=base, gamma=2.0)
    assert torch.autograd.gradcheck(lambda x: loss_fn(x, t), (s, ))


@pytest.mark.parametrize('base', ['kl', 'bce'])
@pytest.mark.parametrize('options', [
    dict(), dict(beta=0.5, gamma=1.5, theta=1.0, temperature=2.0)])
def test_blocked_sum_matches_the_plain_graph_in_value_and_gradient(
        logits, base, options, monkeypatch):
    """The loss runs in row blocks with a hand-written backward; with
    blocks of 3 rows (7 rows: 3 blocks), value and gradient equal those of
    the formulas written as plain tensor operations, ignored rows and
    gradcheck included."""
    from sea_kd.models.losses.blocked_row_sum import BlockedRowSum
    monkeypatch.setattr(BlockedRowSum, 'block_rows', 3)
    s, t = logits
    valid = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    beta, gamma = options.get('beta', 1.0), options.get('gamma', 2.0)
    theta, temp = options.get('theta', 1.8), options.get('temperature', 1.0)
    fn = ADLoss(base=base, normaliser='kept', **options)

    x = s.clone().requires_grad_(True)
    fn(x, t, valid).backward()

    y = s.clone().requires_grad_(True)
    q = torch.sigmoid(t / temp).clamp(1e-6, 1 - 1e-6)
    p = torch.sigmoid(y / temp)
    kl = q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()
    h = -(q * q.log() + (1 - q) * (1 - q).log())
    w = (1 - torch.exp(-(kl + beta * h)))**gamma
    term = kl if base == 'kl' else 0.5 * (-q * p.log()) + 0.5 * (
        -(1 - q) * (1 - p).log())
    plain = temp**2 * (w * term)[valid].sum() / q[valid].pow(theta).sum(
    ).clamp(min=1)
    plain.backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-9, atol=1e-12)
    assert not x.grad[~valid].any()
    z = s.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: fn(v, t, valid), (z, ))


def test_weight_carries_gradient():
    """With γ > 0 the gradient differs from that of a detached weight."""
    s = torch.tensor([[0.3, -1.2]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[2.0, 0.5]], dtype=torch.float64)
    ADLoss()(s, t).backward()
    full = s.grad.clone()
    q, p = torch.sigmoid(t), torch.sigmoid(s.detach())
    # gradient of Σ w·KL with w held constant: w · (p − q) / N
    kl = q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()
    h = -(q * q.log() + (1 - q) * (1 - q).log())
    w = (1 - torch.exp(-(kl + h)))**2
    detached = w * (p - q) / q.pow(1.8).sum().clamp(min=1)
    assert not torch.allclose(full, detached)


def test_teacher_gets_no_gradient(logits):
    s, t = logits
    s = s.clone().requires_grad_(True)
    t = t.clone().requires_grad_(True)
    ADLoss()(s, t).backward()
    assert t.grad is None and s.grad.abs().sum() > 0


def test_extreme_logits_are_finite():
    s = torch.tensor([[100.0, -100.0, 0.0, 30.0]], requires_grad=True)
    t = torch.tensor([[-100.0, 100.0, 1000.0, -1000.0]])
    for base in ('kl', 'bce'):
        loss = ADLoss(base=base)(s, t)
        (grad, ) = torch.autograd.grad(loss, s)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert loss > 0


def test_fp16_inputs_computed_in_fp32(logits):
    s, t = logits
    loss16 = ADLoss()(s.half(), t.half())
    assert loss16.dtype == torch.float32
    ref = ADLoss()(s.half().double(), t.half().double())
    assert loss16.item() == pytest.approx(ref.item(), rel=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert ADLoss()(s.float(), t.float()).dtype == torch.float32


def test_one_class_and_no_rows():
    s = torch.tensor([[0.5], [-2.0]], dtype=torch.float64)
    t = torch.tensor([[1.5], [-1.0]], dtype=torch.float64)
    assert ADLoss()(s, t).item() == pytest.approx(reference_adl(s, t),
                                                  rel=1e-9)
    s.requires_grad_(True)
    empty = ADLoss()(s, t, torch.zeros(2, dtype=torch.bool))
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(s.grad, torch.zeros_like(s))


def test_built_from_registry_and_bad_inputs():
    loss = MODELS.build(dict(type='ADLoss', beta=1.0, gamma=2.0, theta=1.8,
                             base='bce', temperature=1.0, loss_weight=2.0))
    assert isinstance(loss, ADLoss) and loss.loss_weight == 2.0
    with pytest.raises(ValueError,
                       match=r"base must be one of \('kl', 'bce'\)"):
        ADLoss(base='mse')
    with pytest.raises(ValueError, match='same \\(N, C\\) shape'):
        ADLoss()(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match='valid_mask must have shape'):
        ADLoss()(torch.zeros(3, 2), torch.zeros(3, 2),
                 torch.ones(2, dtype=torch.bool))
