"""DistributionKLLoss against a plain-loop reference."""
import math

import pytest
import torch

from sea_kd.models.losses import DistributionKLLoss


def reference(pred, target, weight, T, reduction, avg_factor):
    total = 0.0
    for i in range(pred.shape[0]):
        sp = [math.exp(float(v) / T) for v in pred[i]]
        tp = [math.exp(float(v) / T) for v in target[i]]
        p = [v / sum(sp) for v in sp]
        q = [v / sum(tp) for v in tp]
        kl = [qk * (math.log(qk) - math.log(pk)) for pk, qk in zip(p, q)]
        row = sum(kl) / len(kl) if reduction == 'mean' else sum(kl)
        total += float(weight[i]) * row
    return T * T * total / avg_factor


@pytest.mark.parametrize('T, reduction', [(10.0, 'mean'), (1.0, 'sum'),
                                          (2.0, 'mean')])
def test_matches_plain_loop(T, reduction):
    torch.manual_seed(0)
    pred, target = torch.randn(6, 17) * 3, torch.randn(6, 17) * 3
    weight = torch.rand(6)
    loss = DistributionKLLoss(T, reduction, loss_weight=0.25)(
        pred, target, weight, avg_factor=4.0)
    assert loss.item() == pytest.approx(
        0.25 * reference(pred, target, weight, T, reduction, 4.0), rel=1e-5)


def test_zero_at_equality_and_gradient_only_to_prediction():
    target = torch.randn(4, 5, requires_grad=True)
    assert DistributionKLLoss()(target.detach().clone(),
                                target).item() == pytest.approx(0, abs=1e-5)
    pred = torch.randn(4, 5, requires_grad=True)
    DistributionKLLoss()(pred, target).backward()
    assert pred.grad.abs().sum() > 0 and target.grad is None


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_fp32(dtype):
    torch.manual_seed(1)
    pred, target = torch.randn(3, 17), torch.randn(3, 17)
    half = DistributionKLLoss(10.0)(pred.to(dtype), target.to(dtype))
    full = DistributionKLLoss(10.0)(pred.to(dtype).float(),
                                    target.to(dtype).float())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=1e-6)


def test_empty_rows_and_bad_arguments():
    empty = DistributionKLLoss()(torch.zeros(0, 17), torch.zeros(0, 17),
                                 torch.zeros(0), avg_factor=4.0)
    assert empty.item() == 0.0
    with pytest.raises(ValueError, match='differ'):
        DistributionKLLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='bin_reduction'):
        DistributionKLLoss(bin_reduction='max')
    with pytest.raises(ValueError, match='temperature'):
        DistributionKLLoss(temperature=0)
