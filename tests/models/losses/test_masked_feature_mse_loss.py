"""MaskedFeatureMSELoss against a plain per-level reference, gradients,
empty masks, half precision and bad input."""
import pytest
import torch
import torch.nn.functional as F

from sea_kd.models.losses import MaskedFeatureMSELoss


def reference(s, t, masks, weight):
    """LD's IMLoss per level: F.mse_loss of the selected positions' rows."""
    total = 0.0
    for sl, tl, m in zip(s, t, masks):
        rows_s = sl.permute(0, 2, 3, 1)[m]
        rows_t = tl.permute(0, 2, 3, 1)[m]
        if len(rows_s):
            total += float(F.mse_loss(rows_s, rows_t))
    return weight * total


def maps(seed):
    g = torch.Generator().manual_seed(seed)
    sizes = [(4, 6), (2, 3)]
    s = [torch.randn(2, 5, h, w, generator=g) for h, w in sizes]
    t = [torch.randn(2, 5, h, w, generator=g) for h, w in sizes]
    masks = [torch.rand(2, h, w, generator=g) > 0.6 for h, w in sizes]
    return s, t, masks


def test_matches_the_per_level_reference():
    s, t, masks = maps(0)
    loss = MaskedFeatureMSELoss(loss_weight=2.0)(s, t, masks)
    assert loss.item() == pytest.approx(reference(s, t, masks, 2.0),
                                        rel=1e-5)


def test_a_level_without_positions_adds_nothing_and_no_mask_gives_zero():
    s, t, masks = maps(1)
    masks[1][:] = False
    loss = MaskedFeatureMSELoss()(s, t, masks)
    assert loss.item() == pytest.approx(reference(s, t, masks, 1.0),
                                        rel=1e-5)
    s = [x.requires_grad_(True) for x in s]
    empty = MaskedFeatureMSELoss()(s, t, [torch.zeros_like(m)
                                          for m in masks])
    assert empty.item() == 0.0
    empty.backward()  # keeps the graph: a step without positions is fine
    assert all(x.grad.abs().sum() == 0 for x in s)


def test_gradient_reaches_the_student_only():
    s, t, masks = maps(2)
    s = [x.requires_grad_(True) for x in s]
    t = [x.requires_grad_(True) for x in t]
    MaskedFeatureMSELoss()(s, t, masks).backward()
    assert s[0].grad.abs().sum() > 0 and t[0].grad is None
    # only masked positions get a gradient
    grad_at = s[0].grad.abs().sum(1) > 0
    assert torch.equal(grad_at, masks[0])


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_fp32(dtype):
    s, t, masks = maps(3)
    loss = MaskedFeatureMSELoss()([x.to(dtype) for x in s],
                                  [x.to(dtype) for x in t], masks)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(
        reference([x.to(dtype).float() for x in s],
                  [x.to(dtype).float() for x in t], masks, 1.0), rel=1e-4)


def test_bad_input_is_named():
    s, t, masks = maps(4)
    with pytest.raises(ValueError, match='masks'):
        MaskedFeatureMSELoss()(s, t, masks[:1])
    with pytest.raises(ValueError, match=r'\(B, H, W\)'):
        MaskedFeatureMSELoss()(s, t, [masks[0][0], masks[1]])
