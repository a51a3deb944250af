"""R-CNN prediction distillation: softmax KL and class-aware regression KD
against plain loops and hand-computed values."""
import math

import pytest
import torch

from sea_kd.models.losses import ClassAwareRegKDLoss, RCNNLogitKDLoss


def test_logit_kd_by_hand_and_temperature():
    s = torch.tensor([[0., 0., 0.]])
    t = torch.tensor([[math.log(2.), 0., 0.]])  # q = (1/2, 1/4, 1/4)
    # KL(q || uniform) = sum q log(3 q)
    by_hand = 0.5 * math.log(1.5) + 2 * 0.25 * math.log(0.75)
    assert RCNNLogitKDLoss()(s, t).item() == pytest.approx(by_hand, rel=1e-6)
    # T = 2: q = softmax(t / 2), scaled by T^2
    q = torch.tensor([math.sqrt(2.), 1., 1.])
    q = q / q.sum()
    expected = 4 * float((q * (q * 3).log()).sum())
    assert RCNNLogitKDLoss(temperature=2.0)(s, t).item() == pytest.approx(
        expected, rel=1e-6)
    assert RCNNLogitKDLoss()(t, t).item() == pytest.approx(0, abs=1e-7)


def test_reg_kd_matches_loops():
    gen = torch.Generator().manual_seed(0)
    k, c = 5, 3
    s = torch.randn(k, 4 * c, generator=gen, requires_grad=True)
    t = torch.randn(k, 4 * c, generator=gen, requires_grad=True)
    logits = torch.randn(k, c + 1, generator=gen)
    value = ClassAwareRegKDLoss(loss_weight=2.0)(s, t, logits)
    total = 0.0
    s_, t_ = s.detach(), t.detach()
    for i in range(k):
        p = torch.softmax(logits[i], 0)
        for coord in range(4):
            acc = sum(float(p[cls]) * float(t_[i, 4 * cls + coord] -
                                            s_[i, 4 * cls + coord])
                      for cls in range(c))  # background carries no delta
            total += abs(acc)
    assert value.item() == pytest.approx(2.0 * total / k, rel=1e-5)
    value.backward()
    assert s.grad.abs().sum() > 0 and t.grad is None


def test_reg_kd_class_agnostic():
    s = torch.tensor([[1., 0., 0., 0.]])
    t = torch.tensor([[0., 2., 0., 0.]])
    logits = torch.tensor([[0., 0., 0.]])  # foreground probability 2/3
    value = ClassAwareRegKDLoss()(s, t, logits)
    assert value.item() == pytest.approx(2 / 3 * (1 + 2), rel=1e-6)


def test_empty_and_fp16():
    for loss, args in (
            (RCNNLogitKDLoss(), (torch.zeros(0, 4), torch.zeros(0, 4))),
            (ClassAwareRegKDLoss(),
             (torch.zeros(0, 12), torch.zeros(0, 12), torch.zeros(0, 4)))):
        value = loss(*args)
        assert value.item() == 0 and torch.isfinite(value)
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    half = RCNNLogitKDLoss()(s.half(), t.half())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(
        RCNNLogitKDLoss()(s.half().float(), t.half().float()).item())
    d_s, d_t = torch.randn(6, 12, generator=gen), torch.randn(6, 12,
                                                             generator=gen)
    half = ClassAwareRegKDLoss()(d_s.half(), d_t.half(), t.half())
    assert half.dtype == torch.float32 and torch.isfinite(half)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match='same number of classes'):
        RCNNLogitKDLoss()(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match='reg_class_agnostic'):
        ClassAwareRegKDLoss()(torch.zeros(2, 8), torch.zeros(2, 8),
                              torch.zeros(2, 4))
    with pytest.raises(ValueError, match='temperature'):
        RCNNLogitKDLoss(temperature=0)
