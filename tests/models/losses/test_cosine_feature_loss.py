"""CosineFeatureLoss against a plain loop over positions written from
RT-DETRv4's ``loss_distillation`` (mean of 1 - cos over batch and
positions), gradients, edge cases and half precision."""
import math

import pytest
import torch

from sea_kd.models.losses import CosineFeatureLoss


def loop_reference(student, teacher, weight):
    """λ · mean over levels of mean over (b, h, w) of 1 - cos, by hand."""
    per_level = []
    for s, t in zip(student, teacher):
        b, c, h, w = s.shape
        total, count = 0.0, 0
        for i in range(b):
            for y in range(h):
                for x in range(w):
                    u = [float(s[i, k, y, x]) for k in range(c)]
                    v = [float(t[i, k, y, x]) for k in range(c)]
                    dot = sum(p * q for p, q in zip(u, v))
                    norm = math.sqrt(sum(p * p for p in u)) * \
                        math.sqrt(sum(q * q for q in v))
                    total += 1 - dot / max(norm, 1e-8)
                    count += 1
        per_level.append(total / count)
    return weight * sum(per_level) / len(per_level)


def test_matches_the_loop_reference_on_two_levels():
    torch.manual_seed(0)
    student = [torch.randn(2, 5, 3, 4), torch.randn(2, 5, 2, 2)]
    teacher = [torch.randn(2, 5, 3, 4), torch.randn(2, 5, 2, 2)]
    loss = CosineFeatureLoss(loss_weight=5.0)(student, teacher)
    assert loss.item() == pytest.approx(
        loop_reference(student, teacher, 5.0), rel=1e-5)


def test_scale_does_not_matter_and_equal_directions_give_zero():
    torch.manual_seed(1)
    t = torch.randn(1, 4, 3, 3)
    loss = CosineFeatureLoss()
    assert loss([3.0 * t], [t]).item() == pytest.approx(0.0, abs=1e-6)
    assert loss([-t], [t]).item() == pytest.approx(2.0, abs=1e-6)


def test_gradient_reaches_the_student_only():
    torch.manual_seed(2)
    s = torch.randn(2, 4, 3, 3, requires_grad=True)
    t = torch.randn(2, 4, 3, 3, requires_grad=True)
    CosineFeatureLoss()([s], [t]).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_a_zero_student_vector_counts_as_cosine_zero():
    s = torch.zeros(1, 3, 1, 2)
    t = torch.ones(1, 3, 1, 2)
    assert CosineFeatureLoss()([s], [t]).item() == pytest.approx(1.0)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_an_fp32_loss(dtype):
    torch.manual_seed(3)
    s, t = torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4)
    full = CosineFeatureLoss()([s], [t])
    half = CosineFeatureLoss()([s.to(dtype)], [t.to(dtype)])
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), abs=2e-2)


def test_shape_mismatch_names_the_loss():
    with pytest.raises(ValueError, match='student feature'):
        CosineFeatureLoss()([torch.zeros(1, 3, 2, 2)],
                            [torch.zeros(1, 4, 2, 2)])
