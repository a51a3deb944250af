"""Logit standardisation: the z-score against a plain loop, the authors' KD
loss written out from sunshangquan/logit-standardization-KD@f6e5aa5, the
option of each logit loss (the loss of the standardised logits, invariant
to each row's shift and scale), gradients, one class, bfloat16."""
import math

import numpy as np
import pytest
import torch

from sea_kd.models.losses import (ADLoss, DistributionKLLoss, HDLoss,
                                  KDQualityFocalLoss)
from sea_kd.models.losses.logit_standardization import standardize_logits


def zscore_loop(rows):
    out = []
    for row in rows.tolist():
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / (len(row) - 1)
        out.append([(v - mean) / (math.sqrt(var) + 1e-7) for v in row])
    return torch.tensor(out, dtype=torch.float64)


def test_the_z_score_matches_a_plain_loop():
    torch.manual_seed(0)
    logits = torch.randn(7, 5, dtype=torch.float64) * 3 + 1
    assert torch.allclose(standardize_logits(logits), zscore_loop(logits),
                          atol=1e-12)


def test_one_class_is_refused_with_the_fix():
    with pytest.raises(ValueError, match='at least two classes.*'
                       'logit_standardization=False'):
        standardize_logits(torch.randn(4, 1))
    loss = KDQualityFocalLoss(logit_standardization=True)
    with pytest.raises(ValueError, match='at least two classes'):
        loss(torch.randn(4, 1), torch.randn(4, 1))


def test_the_kd_term_is_the_authors_kd_loss():
    """DistributionKLLoss(sum over classes, no weights, no avg factor) with
    the option is the source's ``kd_loss(..., logit_stand=True)``:
    Σ_c KL(softmax(Z(t)/T) ‖ softmax(Z(s)/T)) averaged over rows, × T²."""
    rng = np.random.default_rng(0)
    s = rng.normal(size=(6, 4)) * 2
    t = rng.normal(size=(6, 4)) * 5 - 1
    T = 2.0

    def z(x):
        return (x - x.mean(-1, keepdims=True)) / (
            x.std(-1, ddof=1, keepdims=True) + 1e-7)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(z(s) / T), softmax(z(t) / T)
    expected = (q * (np.log(q) - np.log(p))).sum(1).mean() * T * T
    loss = DistributionKLLoss(temperature=T, bin_reduction='sum',
                              logit_standardization=True)
    got = loss(torch.tensor(s), torch.tensor(t))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def _calls():
    """Each loss with the option, and how to call it on (s, t)."""
    labels = torch.tensor([0, 3, 1, 3, 2, 3])
    harmony = torch.linspace(0.2, 0.9, 6)
    return {
        'KDQualityFocalLoss': (
            lambda **o: KDQualityFocalLoss(**o),
            lambda loss, s, t: loss(s, t, torch.ones(6), avg_factor=2.0)),
        'DistributionKLLoss': (
            lambda **o: DistributionKLLoss(temperature=2.0, **o),
            lambda loss, s, t: loss(s, t)),
        'ADLoss': (
            lambda **o: ADLoss(**o),
            lambda loss, s, t: loss(s, t)),
        'HDLoss': (
            lambda **o: HDLoss(**o),
            lambda loss, s, t: loss(s, t, labels, harmony)),
    }


@pytest.mark.parametrize('name', sorted(_calls()))
def test_each_option_is_the_loss_of_the_standardised_logits(name):
    make, call = _calls()[name]
    torch.manual_seed(0)
    s = torch.randn(6, 3) * 4 - 2
    t = torch.randn(6, 3) * 6 + 1
    on = call(make(logit_standardization=True), s, t)
    off = call(make(), zscore_loop(s).float(), zscore_loop(t).float())
    assert on.item() == pytest.approx(off.item(), rel=1e-5)
    # invariant to each row's shift and (positive) scale, of either model
    shift, scale = torch.randn(6, 1) * 5, torch.rand(6, 1) * 3 + 0.5
    moved = call(make(logit_standardization=True), s * scale + shift,
                 t * 2.5 - shift)
    assert moved.item() == pytest.approx(on.item(), rel=1e-4)
    # and it changes the loss: the option is not a no-op
    assert call(make(), s, t).item() != pytest.approx(on.item(), rel=1e-3)


@pytest.mark.parametrize('name', sorted(_calls()))
def test_gradients_reach_the_student_only(name):
    make, call = _calls()[name]
    torch.manual_seed(0)
    s = torch.randn(6, 3, requires_grad=True)
    t = torch.randn(6, 3, requires_grad=True)
    call(make(logit_standardization=True), s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert torch.isfinite(s.grad).all()
    assert t.grad is None


@pytest.mark.parametrize('name', sorted(_calls()))
def test_bfloat16_logits(name):
    make, call = _calls()[name]
    torch.manual_seed(0)
    s, t = torch.randn(6, 3), torch.randn(6, 3)
    full = call(make(logit_standardization=True), s, t)
    half = call(make(logit_standardization=True), s.bfloat16(),
                t.bfloat16())
    assert half.dtype == torch.float32 and torch.isfinite(half)
    assert half.item() == pytest.approx(full.item(), rel=5e-2)
