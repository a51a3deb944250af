import math

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.losses import TFDLoss


def reference_tfd(student, teacher, m_cls, m_reg, lam_cls, lam_reg,
                  normalizer='joint', loss_weight=1.0):
    """Loops over levels, images, positions and channels."""
    sums = dict(joint=0.0, cls=0.0, reg=0.0)
    mass = dict(joint=0.0, cls=0.0, reg=0.0)
    for s, t, mc, mr in zip(student, teacher, m_cls, m_reg):
        batch, channels, height, width = s.shape
        for b in range(batch):
            for h in range(height):
                for w in range(width):
                    d = sum((float(s[b, c, h, w]) - float(t[b, c, h, w]))**2
                            for c in range(channels)) / channels
                    wc, wr = float(mc[b, h, w]), float(mr[b, h, w])
                    joint = lam_cls * wc + lam_reg * wr
                    sums['joint'] += joint * d
                    mass['joint'] += joint
                    sums['cls'] += wc * d
                    mass['cls'] += wc
                    sums['reg'] += wr * d
                    mass['reg'] += wr
    if normalizer == 'joint':
        return loss_weight * sums['joint'] / max(mass['joint'], 1e-6)
    return loss_weight * (lam_cls * sums['cls'] / max(mass['cls'], 1e-6) +
                          lam_reg * sums['reg'] / max(mass['reg'], 1e-6))


@pytest.fixture
def case():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 4, 5), (2, 3, 2, 3)]
    s = [torch.randn(*sh, generator=g, dtype=torch.float64) for sh in shapes]
    t = [torch.randn(*sh, generator=g, dtype=torch.float64) for sh in shapes]
    m_cls = [torch.rand(b, h, w, generator=g, dtype=torch.float64)
             for b, _, h, w in shapes]
    m_reg = [torch.rand(b, h, w, generator=g, dtype=torch.float64) *
             (torch.rand(b, h, w, generator=g) > 0.7)
             for b, _, h, w in shapes]
    return s, t, m_cls, m_reg


@pytest.mark.parametrize('normalizer', ['joint', 'per_task'])
@pytest.mark.parametrize('task_losses', [(1.0, 1.0), (3.0, 1.0),
                                         (0.2, 1.8)])
def test_dynamic_matches_plain_reference(case, normalizer, task_losses):
    s, t, mc, mr = case
    l_cls, l_reg = task_losses
    lam_cls = 2 * l_cls / (l_cls + l_reg)
    lam_reg = 2 * l_reg / (l_cls + l_reg)
    loss = TFDLoss(normalizer=normalizer, loss_weight=2.0)(
        s, t, mc, mr, task_losses=(torch.tensor(l_cls), l_reg))
    assert loss.item() == pytest.approx(
        reference_tfd(s, t, mc, mr, lam_cls, lam_reg, normalizer, 2.0),
        rel=1e-6)  # the task weights are computed in fp32


@pytest.mark.parametrize('normalizer', ['joint', 'per_task'])
def test_fixed_weights_match_reference(case, normalizer):
    s, t, mc, mr = case
    loss = MODELS.build(dict(type='TFDLoss', task_weights='fixed',
                             fixed_weights=(0.3, 1.7),
                             normalizer=normalizer))
    # task losses are ignored by fixed weights
    value = loss(s, t, mc, mr, task_losses=(100.0, 0.0))
    assert value.item() == pytest.approx(
        reference_tfd(s, t, mc, mr, 0.3, 1.7, normalizer), rel=1e-9)


def test_task_weights_move_toward_the_larger_loss():
    loss = TFDLoss()
    lam = [loss.task_weights_from((l_cls, 1.0))
           for l_cls in (0.25, 0.5, 1.0, 2.0, 4.0)]
    cls_weights = [float(c) for c, _ in lam]
    reg_weights = [float(r) for _, r in lam]
    assert cls_weights == sorted(cls_weights)
    assert reg_weights == sorted(reg_weights, reverse=True)
    for c, r in zip(cls_weights, reg_weights):
        assert c + r == pytest.approx(2.0)
    assert cls_weights[2] == pytest.approx(1.0)
    assert cls_weights[-1] > 1 > reg_weights[-1]
    # both losses zero: equal weights; tensors are detached
    zero = loss.task_weights_from((0.0, torch.tensor(0.0)))
    assert [float(x) for x in zero] == [1.0, 1.0]
    l_cls = torch.tensor(2.0, requires_grad=True)
    assert not any(w.requires_grad
                   for w in loss.task_weights_from((l_cls, 1.0)))


def test_loss_follows_the_weighted_task(case):
    """With the joint normaliser the loss is a weighted mean of the two
    masks' errors: a larger regression loss pulls it toward the error under
    the regression mask."""
    s, t, mc, mr = case
    fixed = dict(task_weights='fixed', normalizer='per_task')
    err_cls = TFDLoss(fixed_weights=(1.0, 0.0), **fixed)(s, t, mc, mr).item()
    err_reg = TFDLoss(fixed_weights=(0.0, 1.0), **fixed)(s, t, mc, mr).item()
    assert err_cls != pytest.approx(err_reg)
    values = [TFDLoss()(s, t, mc, mr, task_losses=(1.0, l_reg)).item()
              for l_reg in (0.1, 1.0, 10.0, 1000.0)]
    distance = [abs(v - err_reg) for v in values]
    assert distance == sorted(distance, reverse=True)
    assert values[-1] == pytest.approx(err_reg, rel=0.1)


def test_gradient_reaches_student_only(case):
    s, t, mc, mr = case
    s = [x.clone().requires_grad_(True) for x in s]
    t = [x.clone().requires_grad_(True) for x in t]
    mc = [x.clone().requires_grad_(True) for x in mc]
    l_cls = torch.tensor(1.0, requires_grad=True)
    TFDLoss()(s, t, mc, mr, task_losses=(l_cls, 2.0)).backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s)
    assert all(x.grad is None for x in t + mc) and l_cls.grad is None
    fn = TFDLoss(task_weights='fixed')
    assert torch.autograd.gradcheck(
        lambda a, b: fn([a, b], [x.detach() for x in t],
                        [x.detach() for x in mc], mr),
        tuple(x.detach().requires_grad_(True) for x in s))


def test_empty_regression_mask_and_no_positives(case):
    s, t, mc, mr = case
    empty = [torch.zeros_like(m) for m in mr]
    for normalizer in ('joint', 'per_task'):
        loss = TFDLoss(normalizer=normalizer)(s, t, mc, empty,
                                              task_losses=(1.0, 0.0))
        assert torch.isfinite(loss) and loss > 0
    # regression alone with no positive location: 0, finite gradient
    x = [f.clone().requires_grad_(True) for f in s]
    loss = TFDLoss(task_weights='fixed', fixed_weights=(0.0, 1.0))(
        x, t, mc, empty)
    loss.backward()
    assert loss.item() == 0 and all(torch.isfinite(f.grad).all() for f in x)


def test_fp16_inputs_computed_in_fp32(case):
    s, t, mc, mr = case
    half = [[x.half() for x in group] for group in (s, t, mc, mr)]
    loss16 = TFDLoss()(*half, task_losses=(1.0, 2.0))
    assert loss16.dtype == torch.float32
    ref = TFDLoss()(*[[x.double() for x in g] for g in half],
                    task_losses=(1.0, 2.0))
    assert loss16.item() == pytest.approx(ref.item(), rel=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = TFDLoss()(*[[x.float() for x in g] for g in (s, t, mc, mr)],
                        task_losses=(1.0, 2.0))
    assert out.dtype == torch.float32


def test_classification_masks_reference():
    g = torch.Generator().manual_seed(2)
    anchors, classes = 3, 2
    logits = [torch.randn(2, anchors * classes, 3, 4, generator=g),
              torch.randn(2, anchors * classes, 1, 2, generator=g)]
    for norm in ('max', 'none'):
        masks = TFDLoss(cls_mask_norm=norm).classification_masks(logits)
        for level, m in zip(logits, masks):
            b_, _, h_, w_ = level.shape
            assert m.shape == (b_, h_, w_)
            for b in range(b_):
                raw = [[max(1 / (1 + math.exp(-float(level[b, k, h, w])))
                            for k in range(anchors * classes))
                        for w in range(w_)] for h in range(h_)]
                peak = max(max(row) for row in raw) if norm == 'max' else 1
                for h in range(h_):
                    for w in range(w_):
                        assert m[b, h, w].item() == pytest.approx(
                            raw[h][w] / peak, rel=1e-5)
    # one class, one anchor: the teacher probability itself
    one = torch.randn(1, 1, 2, 2, generator=g)
    (m, ) = TFDLoss(cls_mask_norm='none').classification_masks([one])
    assert torch.allclose(m, one.sigmoid()[:, 0])


def test_regression_masks_take_max_over_anchors():
    # level (B=1, H=2, W=2, A=3), positions ordered H -> W -> anchor
    values = torch.zeros(1, 12)
    values[0, 3 * 1 + 2] = 0.4  # (h=0, w=1, a=2)
    values[0, 3 * 1 + 0] = 0.7  # (h=0, w=1, a=0)
    values[0, 3 * 2 + 1] = 0.2  # (h=1, w=0, a=1)
    (m, ) = TFDLoss().regression_masks([values], [(2, 2)])
    assert m.tolist() == [[[0.0, pytest.approx(0.7)],
                           [pytest.approx(0.2), 0.0]]]
    with pytest.raises(ValueError, match='whole number of anchors'):
        TFDLoss().regression_masks([values[:, :10]], [(2, 2)])


def test_errors_name_the_problem(case):
    s, t, mc, mr = case
    with pytest.raises(ValueError, match='task_losses'):
        TFDLoss()(s, t, mc, mr)
    with pytest.raises(ValueError, match='adapt the student channels'):
        TFDLoss(task_weights='fixed')(s, [x[:, :2] for x in t], mc, mr)
    with pytest.raises(ValueError, match='masks must have shape'):
        TFDLoss(task_weights='fixed')(s, t, [m[:1] for m in mc], mr)
    with pytest.raises(ValueError, match='number of levels'):
        TFDLoss(task_weights='fixed')(s, t[:1], mc, mr)
    for bad in (dict(task_weights='learned'), dict(normalizer='sum'),
                dict(cls_mask_norm='sum'), dict(reg_mask='score'),
                dict(fixed_weights=(0.0, 0.0)),
                dict(fixed_weights=(1.0, 1.0, 1.0))):
        with pytest.raises(ValueError):
            TFDLoss(**bad)
