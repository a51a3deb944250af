import math

import pytest
import torch

from sea_kd.models.losses import PKDLoss


def reference(student, teacher, weight, eps=1e-6):
    """Plain loops: standardise every channel over (N, H, W) with the
    unbiased σ, then half the mean squared difference, summed over levels."""

    def standardise(x):
        n, c, h, w = x.shape
        out = [[[[0.0] * w for _ in range(h)] for _ in range(c)]
               for _ in range(n)]
        for ci in range(c):
            values = [float(x[ni, ci, hi, wi]) for ni in range(n)
                      for hi in range(h) for wi in range(w)]
            mean = sum(values) / len(values)
            var = sum((v - mean)**2 for v in values) / (len(values) - 1) \
                if len(values) > 1 else 0.0
            std = math.sqrt(var)
            for ni in range(n):
                for hi in range(h):
                    for wi in range(w):
                        out[ni][ci][hi][wi] = \
                            (float(x[ni, ci, hi, wi]) - mean) / (std + eps)
        return out

    total = 0.0
    for s, t in zip(student, teacher):
        zs, zt = standardise(s), standardise(t)
        n, c, h, w = s.shape
        sq = sum((zs[a][b][i][j] - zt[a][b][i][j])**2 for a in range(n)
                 for b in range(c) for i in range(h) for j in range(w))
        total += 0.5 * sq / (n * c * h * w)
    return weight * total


def test_hand_computed_value():
    # one channel, values (1, 2, 3) vs (3, 2, 1): z = (-1, 0, 1) vs (1, 0,
    # -1) (σ = 1), squared differences (4, 0, 4), mean 8/3, half 4/3
    s = [torch.tensor([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)]
    t = [torch.tensor([3.0, 2.0, 1.0]).reshape(1, 1, 1, 3)]
    loss = PKDLoss(loss_weight=3.0, eps=0.0)(s, t)
    assert loss.item() == pytest.approx(4.0)


def test_matches_reference_and_ignores_magnitude():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 4, 5), (2, 3, 2, 3), (2, 3, 1, 1)]
    s = [torch.randn(*sh, generator=g) for sh in shapes]
    t = [torch.randn(*sh, generator=g) for sh in shapes]
    loss = PKDLoss(loss_weight=2.0)(s, t)
    assert loss.item() == pytest.approx(reference(s, t, 2.0), rel=1e-5)
    # scaling and shifting a channel changes nothing (up to ε)
    scaled = [100 * x + 7 for x in t]
    assert PKDLoss(loss_weight=2.0)(s, scaled).item() == pytest.approx(
        loss.item(), rel=1e-4)


def test_perfectly_correlated_is_zero_and_gradient_reaches_student_only():
    s = [torch.randn(2, 4, 3, 3, requires_grad=True)]
    t = [(5 * s[0] - 1).detach().requires_grad_(True)]
    loss = PKDLoss()(s, t)
    assert loss.item() == pytest.approx(0.0, abs=1e-8)
    teacher = [torch.randn(2, 4, 3, 3, requires_grad=True)]
    loss = PKDLoss()(s, teacher)
    loss.backward()
    assert s[0].grad.abs().sum() > 0
    assert teacher[0].grad is None  # the loss detaches the teacher


def test_one_value_per_channel_and_constant_channels_are_finite():
    s = [torch.randn(1, 3, 1, 1, requires_grad=True)]
    t = [torch.randn(1, 3, 1, 1)]
    loss = PKDLoss()(s, t)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(s[0].grad).all()
    const = [torch.ones(2, 2, 3, 3)]
    assert torch.isfinite(PKDLoss()(const, [torch.randn(2, 2, 3, 3)]))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_fp32(dtype):
    g = torch.Generator().manual_seed(1)
    s = [torch.randn(2, 3, 4, 4, generator=g).to(dtype)]
    t = [torch.randn(2, 3, 4, 4, generator=g).to(dtype)]
    loss = PKDLoss()(s, t)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(
        reference([s[0].float()], [t[0].float()], 1.0), rel=1e-4)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match='same non-zero number of levels'):
        PKDLoss()([], [])
    with pytest.raises(ValueError, match=r'Level 0: student feature '
                       r'\(1, 2, 3, 3\)'):
        PKDLoss()([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 4, 3, 3)])
