import math

import pytest
import torch

from sea_kd.models.losses import CWDLoss


def reference(student, teacher, tau, weight):
    """Plain loops: per map, channel and image a softmax over positions,
    KL(teacher || student), times τ² / (N·C), summed over maps."""
    total = 0.0
    for s, t in zip(student, teacher):
        n, c = s.shape[:2]
        level = 0.0
        for a in range(n):
            for b in range(c):
                xs = [float(v) / tau for v in s[a, b].flatten()]
                xt = [float(v) / tau for v in t[a, b].flatten()]
                zs = sum(math.exp(v) for v in xs)
                zt = sum(math.exp(v) for v in xt)
                for vs, vt in zip(xs, xt):
                    pt, ps = math.exp(vt) / zt, math.exp(vs) / zs
                    level += pt * (math.log(pt) - math.log(ps))
        total += level * tau**2 / (n * c)
    return weight * total


def test_hand_computed_value():
    # teacher (0, 0): p_t = (½, ½); student (log 3, 0): p_s = (¾, ¼);
    # KL = ½ log(⅔) + ½ log(2) = ½ log(4/3)
    s = [torch.tensor([math.log(3.0), 0.0]).reshape(1, 1, 1, 2)]
    t = [torch.zeros(1, 1, 1, 2)]
    assert CWDLoss(tau=1.0, loss_weight=2.0)(s, t).item() == pytest.approx(
        math.log(4 / 3))


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_matches_reference(tau):
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 4, 5), (2, 3, 2, 3), (2, 3, 1, 1)]
    s = [torch.randn(*sh, generator=g) for sh in shapes]
    t = [torch.randn(*sh, generator=g) for sh in shapes]
    loss = CWDLoss(tau=tau, loss_weight=10.0)(s, t)
    assert loss.item() == pytest.approx(reference(s, t, tau, 10.0),
                                        rel=1e-5)


def test_zero_when_equal_up_to_a_shift_and_gradient_to_student_only():
    s = [torch.randn(2, 3, 4, 4, requires_grad=True)]
    t = [(s[0] + 5).detach().requires_grad_(True)]
    assert CWDLoss()(s, t).item() == pytest.approx(0.0, abs=1e-6)
    teacher = [torch.randn(2, 3, 4, 4, requires_grad=True)]
    loss = CWDLoss()(s, teacher)
    loss.backward()
    assert s[0].grad.abs().sum() > 0
    assert teacher[0].grad is None  # the loss detaches the teacher


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_fp32(dtype):
    g = torch.Generator().manual_seed(1)
    s = [torch.randn(2, 3, 4, 4, generator=g).to(dtype)]
    t = [torch.randn(2, 3, 4, 4, generator=g).to(dtype)]
    loss = CWDLoss()(s, t)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(
        reference([s[0].float()], [t[0].float()], 1.0, 1.0), rel=1e-4)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='tau > 0'):
        CWDLoss(tau=0)
    with pytest.raises(ValueError, match='same non-zero number of maps'):
        CWDLoss()([torch.zeros(1, 1, 2, 2)], [])
    with pytest.raises(ValueError, match=r'Map 0: student \(1, 2, 3, 3\)'):
        CWDLoss()([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 4, 4)])
