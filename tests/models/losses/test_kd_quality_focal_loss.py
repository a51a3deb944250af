"""KDQualityFocalLoss against a plain-loop reference."""
import math

import pytest
import torch

from sea_kd.models.losses import KDQualityFocalLoss


def reference(pred, target, weight, beta, avg_factor):
    total = 0.0
    for i in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            p = 1 / (1 + math.exp(-float(pred[i, c])))
            q = 1 / (1 + math.exp(-float(target[i, c])))
            bce = -(q * math.log(p) + (1 - q) * math.log(1 - p))
            total += float(weight[i]) * bce * abs(p - q)**beta
    return total / avg_factor


@pytest.mark.parametrize('beta', [1.0, 2.0])
def test_matches_plain_loop(beta):
    torch.manual_seed(0)
    pred, target = torch.randn(7, 3), torch.randn(7, 3)
    weight = torch.tensor([1., 0., 1., 1., 0.5, 1., 0.])
    loss = KDQualityFocalLoss(beta=beta, loss_weight=2.0)(
        pred, target, weight, avg_factor=3.0)
    assert loss.item() == pytest.approx(
        2.0 * reference(pred, target, weight, beta, 3.0), rel=1e-5)


def test_zero_when_equal_and_gradient_only_to_prediction():
    target = torch.randn(5, 2)
    pred = target.clone().requires_grad_(True)
    t = target.clone().requires_grad_(True)
    loss = KDQualityFocalLoss()(pred, t)
    # the focal factor |σ(s) − σ(t)| vanishes where they agree
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    pred2 = (target + 1).requires_grad_(True)
    KDQualityFocalLoss()(pred2, t).backward()
    assert pred2.grad.abs().sum() > 0 and t.grad is None


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_fp32(dtype):
    torch.manual_seed(1)
    pred, target = torch.randn(6, 4), torch.randn(6, 4)
    full = KDQualityFocalLoss()(pred.to(dtype).float(),
                                target.to(dtype).float())
    half = KDQualityFocalLoss()(pred.to(dtype), target.to(dtype))
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=1e-6)


def test_empty_rows_and_shape_mismatch():
    empty = KDQualityFocalLoss()(torch.zeros(0, 3, requires_grad=True),
                                 torch.zeros(0, 3), torch.zeros(0),
                                 avg_factor=1.0)
    assert empty.item() == 0.0
    with pytest.raises(ValueError, match='differ'):
        KDQualityFocalLoss()(torch.zeros(2, 3), torch.zeros(2, 4))


def test_the_modulating_factor_keeps_its_gradient():
    """BCKD's and CrossKD's sources leave |σ(s) − q| in the graph: the
    gradient is that of BCE · |σ(s) − q|, not of BCE with the factor
    detached."""
    torch.manual_seed(0)
    s = torch.randn(5, 3, requires_grad=True)
    t = torch.randn(5, 3)
    KDQualityFocalLoss()(s, t, avg_factor=1.0).backward()
    q = t.sigmoid()
    x = s.detach().clone().requires_grad_()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        x, q, reduction='none')
    (bce * (x.sigmoid() - q).abs()).sum().backward()
    assert torch.allclose(s.grad, x.grad, atol=1e-6)
    y = s.detach().clone().requires_grad_()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        y, q, reduction='none')
    (bce * (y.sigmoid() - q).abs().detach()).sum().backward()
    assert not torch.allclose(s.grad, y.grad, atol=1e-3)


@pytest.mark.parametrize('beta', [0.0, 0.5, 1.0, 1.5, 2.0])
def test_blocked_gradient_equals_the_plain_graphs(beta, monkeypatch):
    """The closed-form gradient, over several row blocks, against autograd
    through the plain element-wise graph (weights, average factor)."""
    from sea_kd.models.losses.blocked_row_sum import BlockedRowSum
    monkeypatch.setattr(BlockedRowSum, 'block_rows', 3)
    torch.manual_seed(2)
    s = torch.randn(8, 5, requires_grad=True)
    t = torch.randn(8, 5)
    if beta == 0 or beta >= 1:  # σ(s) = q: the factor's kink (infinite
        t[0] = s[0].detach()    # slope for 0 < β < 1)
    w = torch.rand(8)
    loss = KDQualityFocalLoss(beta=beta, loss_weight=0.5)(
        s, t, w, avg_factor=4.0)
    loss.backward()
    x = s.detach().clone().requires_grad_()
    q = t.sigmoid()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        x, q, reduction='none')
    plain = 0.5 * (w[:, None] * bce * (x.sigmoid() - q).abs()**beta).sum() / 4
    plain.backward()
    torch.testing.assert_close(loss, plain)
    torch.testing.assert_close(s.grad, x.grad, atol=1e-6, rtol=1e-5)
