"""MGD: the term against a plain-loop sum, the masks (ratio, shared over
channels, seeded by seed, rank and iteration), gradients, errors."""
import pytest
import torch
from mmengine.logging import MessageHub

import sea_kd.models.methods.mgd as mgd_module
from sea_kd.models.capture import DistillRecord

from ...conftest import make_batch, tiny_detector_cfg
from .conftest import distiller_with


def mgd(pair, **kwargs):
    return distiller_with(pair, dict(type='MGD', **kwargs))


def test_term_against_a_plain_loop(pair, monkeypatch):
    model = mgd(pair, alpha=0.5, levels=[0, 2])
    method = model.methods['mgd']
    drawn = []
    original = method.keep_masks
    monkeypatch.setattr(method, 'keep_masks',
                        lambda feats: drawn.extend(original(feats)) or drawn)
    inputs, samples = make_batch(model)
    loss = model.loss(inputs, samples)['loss_mgd_feat']
    with torch.no_grad():
        s = model.student.extract_feat(inputs)
        t = pair[3].eval().extract_feat(inputs)
        expected = 0.0
        for k, level in enumerate([0, 2]):
            gen = method.generators[k]
            aligned = gen.align(s[level])
            masked = aligned.clone()
            n, c, h, w = masked.shape
            for a in range(n):
                for y in range(h):
                    for x in range(w):
                        if drawn[k][a, 0, y, x] == 0:
                            masked[a, :, y, x] = 0
            out = gen.generation(masked)
            total = 0.0
            for value in (out - t[level]).flatten().tolist():
                total += value * value
            expected += total / n
    assert loss.item() == pytest.approx(0.5 * expected, rel=1e-4)


def test_gradient_reaches_student_and_generators_only(pair):
    model = mgd(pair)
    loss = model.loss(*make_batch(model, num_items=[0, 1]))['loss_mgd_feat']
    assert torch.isfinite(loss)
    loss.backward()
    gen = model.methods['mgd'].generators[0]
    assert gen.align.weight.grad.abs().sum() > 0
    assert gen.generation[2].weight.grad.abs().sum() > 0
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    # equal channels need no alignment
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=64)
    same = mgd((s_cfg, *pair[1:]))
    assert same.methods['mgd'].generators[0].align is None


def test_a_large_seed_gives_masks(pair):
    """The generator's seed wraps at 2**64 (a seed of 2**40 overflowed)."""
    method = mgd(pair, seed=2**40).methods['mgd']
    (keep, ) = method.keep_masks([torch.zeros(1, 5, 8, 8)])
    assert keep.shape == (1, 1, 8, 8)


def test_masks_ratio_channels_and_seeding(pair, monkeypatch):
    method = mgd(pair, mask_ratio=0.65, seed=3).methods['mgd']
    feats = [torch.zeros(4, 5, 64, 64), torch.zeros(4, 5, 8, 8)]
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 7)
    try:
        first = method.keep_masks(feats)
        assert first[0].shape == (4, 1, 64, 64)  # shared by all channels
        assert first[0].mean().item() == pytest.approx(0.35, abs=0.02)
        again = method.keep_masks(feats)  # same step (e.g. after resume)
        assert all(torch.equal(a, b) for a, b in zip(first, again))
        hub.update_info('iter', 8)
        assert not torch.equal(method.keep_masks(feats)[0], first[0])
        hub.update_info('iter', 7)
        monkeypatch.setattr(mgd_module, 'get_rank', lambda: 1)
        assert not torch.equal(method.keep_masks(feats)[0], first[0])
    finally:
        hub.runtime_info.pop('iter', None)


def test_no_masking_and_bad_ratio(pair):
    method = mgd(pair, mask_ratio=0.0).methods['mgd']
    assert method.keep_masks([torch.zeros(2, 3, 4, 4)])[0].min() == 1
    with pytest.raises(ValueError, match=r'mask_ratio .* \[0, 1\)'):
        mgd(pair, mask_ratio=1.0)


def test_fp16_features_are_computed_in_fp32(pair):
    model = mgd(pair)
    inputs, samples = make_batch(model)
    with torch.no_grad():
        s = tuple(f.half() for f in model.student.extract_feat(inputs))
        t = tuple(f.half() for f in pair[3].eval().extract_feat(inputs))
    record = DistillRecord(data_samples=samples, student_neck=s,
                           teacher_neck=t)
    loss = model.methods['mgd'](record)['feat']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
