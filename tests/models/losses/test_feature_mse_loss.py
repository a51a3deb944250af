import pytest
import torch

from sea_kd.models.losses import FeatureMSELoss


def reference_mse(student, teacher, weight):
    """Slow reference: explicit sums over every element of every level."""
    per_level = []
    for s, t in zip(student, teacher):
        total, count = 0.0, 0
        for s_value, t_value in zip(s.flatten().tolist(),
                                    t.flatten().tolist()):
            total += (s_value - t_value)**2
            count += 1
        per_level.append(total / count)
    return weight * sum(per_level) / len(per_level)


def test_hand_computed_value():
    s = [torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0]]]])]
    t = [torch.tensor([[[[0.0, 0.0]]]]), torch.tensor([[[[3.0]]]])]
    # level 1: (1 + 4) / 2 = 2.5; level 2: 9; mean 5.75; weight 2 -> 11.5
    loss = FeatureMSELoss(loss_weight=2.0)(s, t)
    assert loss.item() == pytest.approx(11.5)


def test_matches_reference_on_random_levels():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 4, 5), (2, 3, 2, 3), (2, 3, 1, 1)]
    s = [torch.randn(*sh, generator=g) for sh in shapes]
    t = [torch.randn(*sh, generator=g) for sh in shapes]
    loss = FeatureMSELoss(loss_weight=0.5)(s, t)
    assert loss.item() == pytest.approx(reference_mse(s, t, 0.5), rel=1e-5)


def test_zero_when_equal_and_gradient_to_student_only():
    s = [torch.randn(1, 2, 3, 3, requires_grad=True)]
    t = [s[0].detach().clone().requires_grad_(True)]
    loss = FeatureMSELoss()(s, t)
    assert loss.item() == 0.0
    s2 = [torch.randn(1, 2, 3, 3, requires_grad=True)]
    loss = FeatureMSELoss()(s2, t)
    loss.backward()
    assert s2[0].grad is not None and s2[0].grad.abs().sum() > 0
    assert t[0].grad is None
    expected = 2 * (s2[0] - t[0]).detach() / s2[0].numel()
    assert torch.allclose(s2[0].grad, expected, atol=1e-6)


def test_fp16_inputs_give_fp32_finite_loss():
    s = [torch.full((1, 2, 2, 2), 300.0, dtype=torch.float16)]
    t = [torch.full((1, 2, 2, 2), -300.0, dtype=torch.float16)]
    loss = FeatureMSELoss()(s, t)
    # 600^2 = 360000 overflows fp16 (max 65504); fp32 computation does not
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(360000.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='number of levels'):
        FeatureMSELoss()([], [])
    with pytest.raises(ValueError, match='number of levels'):
        FeatureMSELoss()([torch.zeros(1, 1, 1, 1)], [])
    with pytest.raises(ValueError, match='adapt the student channels'):
        FeatureMSELoss()([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 4, 3, 3)])
