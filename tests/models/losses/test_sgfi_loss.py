"""SGFILoss: level weights and fused features by hand, a plain per-region,
per-level reference, gradients and edge cases."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import roi_align

from sea_kd.models.losses import SGFILoss

STRIDES = [4, 8]


def constant_maps(values, size=64):
    """One image; level l is constant with channel values ``values[l]``."""
    return [torch.tensor(v, dtype=torch.float32)[None, :, None, None]
            .expand(1, len(v), size // s, size // s).contiguous()
            for v, s in zip(values, STRIDES)]


def hand_loss():
    """C_s = 2, C_t = 4; the adapter and embedding set to simple linear
    maps, so that on constant features everything is a few numbers."""
    loss = SGFILoss(student_channels=2, teacher_channels=4,
                    featmap_strides=STRIDES)
    with torch.no_grad():
        loss.adapter.conv.weight.copy_(torch.tensor(
            [[1., 0.], [0., 1.], [1., 1.], [0., 0.]])[..., None, None])
        loss.adapter.conv.bias.zero_()
        conv1, conv2 = loss.embed[0], loss.embed[1]
        # a constant map goes to A·v: each 3x3 kernel averages one channel
        conv1.weight.zero_()
        conv1.weight[0, 0] = 1 / 9
        conv1.weight[1, 1] = 1 / 9
        conv1.bias.zero_()
        conv2.weight.fill_(1 / 9)  # e = v_0 + v_1 of the adapted feature
        conv2.bias.zero_()
    return loss


def test_level_weights_and_fused_feature_by_hand():
    loss = hand_loss()
    student = constant_maps([[1., 2.], [3., -1.]])
    teacher = torch.tensor([0.5, 0.5, 1., 2.])[None, :, None, None] \
        .expand(1, 4, 7, 7)
    rois = torch.tensor([[0., 8., 8., 40., 40.]])
    # adapted: level 0 (1, 2, 3, 0), level 1 (3, -1, 2, 0)
    # embeddings: e_s = (3, 2), e_t = 0.5 + 0.5 = 1; tau = 1
    fused, alpha = loss.fuse(student, teacher, rois)
    a0 = 1 / (1 + math.exp(-1))  # softmax((3, 2))[0]
    assert alpha[:, 0].tolist() == pytest.approx([a0, 1 - a0], rel=1e-5)
    expected = [a0 * 1 + (1 - a0) * 3, a0 * 2 - (1 - a0), a0 * 3 +
                (1 - a0) * 2, 0.]
    assert fused.shape == (1, 4, 7, 7)
    for c in range(4):
        assert torch.allclose(fused[0, c], torch.full((7, 7), expected[c]),
                              atol=1e-5)
    value = loss(student, teacher, rois)
    target = [0.5, 0.5, 1., 2.]
    by_hand = sum((e - t)**2 for e, t in zip(expected, target)) / 4
    assert value.item() == pytest.approx(by_hand, rel=1e-5)
    # the temperature sharpens the level weights: tau = 0.5 doubles logits
    with torch.no_grad():
        loss.tau.fill_(0.5)
    _, alpha = loss.fuse(student, teacher, rois)
    a0 = 1 / (1 + math.exp(-2))
    assert alpha[0, 0].item() == pytest.approx(a0, rel=1e-5)


def reference(loss, student, teacher, rois):
    """Plain loops over regions and levels."""
    terms = []
    for i in range(rois.shape[0]):
        adapted, embeds = [], []
        t_embed = loss.embed(teacher[i:i + 1]).flatten()
        for feat, stride in zip(student, loss.featmap_strides):
            pooled = roi_align(feat, rois[i:i + 1], (7, 7), 1 / stride, 0,
                               'avg', True)
            a = loss.adapter(pooled)
            adapted.append(a[0])
            embeds.append(torch.dot(loss.embed(a).flatten(), t_embed))
        alpha = torch.softmax(torch.stack(embeds) / loss.tau, 0)
        fused = sum(w * a for w, a in zip(alpha, adapted))
        terms.append(((fused - teacher[i])**2).mean())
    return torch.stack(terms).mean()


def random_case(seed=0, num=5, channels=(8, 16)):
    gen = torch.Generator().manual_seed(seed)
    student = [torch.randn(2, channels[0], 64 // s, 64 // s, generator=gen)
               for s in STRIDES]
    teacher = torch.randn(num, channels[1], 7, 7, generator=gen)
    xy = torch.rand(num, 2, generator=gen) * 40
    wh = torch.rand(num, 2, generator=gen) * 20 + 4
    rois = torch.cat([torch.randint(0, 2, (num, 1), generator=gen).float(),
                      xy, xy + wh], 1)
    return student, teacher, rois


@pytest.mark.parametrize('options', [dict(), dict(embed_padding=1),
                                     dict(embed_act_cfg=dict(type='ReLU'))])
def test_matches_plain_reference(options):
    torch.manual_seed(0)
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES, **options)
    loss.init_weights()
    student, teacher, rois = random_case()
    with torch.no_grad():
        expected = reference(loss, student, teacher, rois)
        value = loss(student, teacher, rois)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradients_reach_student_and_modules_never_teacher():
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES, loss_weight=2.0)
    student, teacher, rois = random_case(seed=1)
    student = [f.requires_grad_() for f in student]
    teacher.requires_grad_()
    value = loss(student, teacher, rois)
    value.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0
               for f in student)
    assert teacher.grad is None
    assert loss.tau.grad is not None and loss.tau.grad.abs() > 0
    assert loss.adapter.conv.weight.grad.abs().sum() > 0
    assert loss.embed[0].weight.grad.abs().sum() > 0


def test_fixed_temperature_is_a_buffer():
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES, tau=0.5, learn_tau=False)
    assert 'tau' not in dict(loss.named_parameters())
    assert loss.state_dict()['tau'].item() == 0.5


def test_empty_regions_give_a_finite_zero():
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES)
    student, _, _ = random_case()
    student = [f.requires_grad_() for f in student]
    value, fused = loss(student, torch.zeros(0, 16, 7, 7),
                        torch.zeros(0, 5), return_fused=True)
    assert value.item() == 0 and torch.isfinite(value)
    assert fused.shape == (0, 16, 7, 7)
    value.backward()  # every parameter is in the graph (DDP)
    assert all(p.grad is not None for p in loss.parameters())


def test_fp16_inputs_give_fp32_loss():
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES)
    student, teacher, rois = random_case(seed=2)
    ref = loss([f.half().float() for f in student], teacher.half().float(),
               rois)
    half = loss([f.half() for f in student], teacher.half(), rois.half())
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(ref.item(), rel=1e-3)


def test_bad_inputs_are_named():
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES)
    student, teacher, rois = random_case()
    with pytest.raises(ValueError, match='2 student levels'):
        loss(student[:1], teacher, rois)
    with pytest.raises(ValueError, match='teacher_channels'):
        loss(student, teacher[:, :8], rois)
    with pytest.raises(ValueError, match=r'\(K, 5\)'):
        loss(student, teacher, rois[:, 1:])
    with pytest.raises(ValueError, match='multiple of 4'):
        SGFILoss(student_channels=8, teacher_channels=6,
                 featmap_strides=STRIDES)
    with pytest.raises(ValueError, match='mmcv.ops'):
        SGFILoss(student_channels=8, teacher_channels=16,
                 featmap_strides=STRIDES, roi_layer=dict(type='NoSuchOp'))


def test_mse_is_zero_when_every_level_equals_the_teacher():
    loss = hand_loss()
    student = constant_maps([[0.5, 0.5], [0.5, 0.5]])
    # adapted (0.5, 0.5, 1, 0) on both levels; the same as the teacher
    teacher = torch.tensor([0.5, 0.5, 1., 0.])[None, :, None, None] \
        .expand(1, 4, 7, 7)
    rois = torch.tensor([[0., 8., 8., 40., 40.]])
    assert loss(student, teacher, rois).item() == pytest.approx(0, abs=1e-10)
    assert F.mse_loss(loss.fuse(student, teacher, rois)[0], teacher) < 1e-10


@pytest.mark.parametrize('options', [
    dict(), dict(embed_padding=1),
    dict(adapter=dict(type='ConvAdapter', kernel_size=3)),
    dict(roi_layer=dict(type='RoIAlign', output_size=9, sampling_ratio=2))
])
def test_linear_shortcut_equals_direct_route(options):
    """The affine shortcut gives the direct route's loss, level weights and
    gradients (double precision, so rounding does not hide a difference)."""
    torch.manual_seed(0)
    fast = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES, **options).double()
    fast.init_weights()
    with torch.no_grad():
        fast.tau.fill_(0.05)  # sharp weights: errors in α would show
        for m in fast.embed:
            m.bias.normal_()
        fast.adapter.conv.bias.normal_()
    slow = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES, linear_shortcut=False,
                    **options).double()
    slow.load_state_dict(fast.state_dict())
    assert fast.linear_shortcut and not slow.linear_shortcut
    student, teacher, rois = random_case(seed=3, num=7)
    size = fast.output_size
    teacher = torch.randn(7, 16, *size, dtype=torch.float64)
    results = []
    for loss in (fast, slow):
        feats = [f.double().requires_grad_() for f in student]
        fused, alpha = loss.fuse(feats, teacher, rois.double())
        value = loss(feats, teacher, rois.double())
        value.backward()
        grads = [f.grad for f in feats] + [p.grad for p in loss.parameters()]
        results.append((fused.detach(), alpha.detach(), value.detach(),
                        grads))
    (f1, a1, v1, g1), (f2, a2, v2, g2) = results
    assert a1.std() > 0.1  # the weights are far from uniform
    assert torch.allclose(a1, a2, atol=1e-10)
    assert torch.allclose(f1, f2, atol=1e-10)
    assert torch.allclose(v1, v2, rtol=1e-10)
    for x, y in zip(g1, g2):
        assert torch.allclose(x, y, rtol=1e-8, atol=1e-10)


def test_activation_turns_the_shortcut_off():
    loss = SGFILoss(student_channels=8, teacher_channels=16,
                    featmap_strides=STRIDES,
                    embed_act_cfg=dict(type='ReLU'))
    assert not loss.linear_shortcut


def test_sparse_and_mmcv_roi_align_give_the_same_loss_and_gradients():
    torch.manual_seed(1)
    losses = {impl: SGFILoss(student_channels=8, teacher_channels=16,
                             featmap_strides=STRIDES, roi_align_impl=impl)
              for impl in ('sparse', 'mmcv')}
    losses['mmcv'].load_state_dict(losses['sparse'].state_dict())
    student, _, rois = random_case(seed=5, num=9)
    teacher = torch.randn(9, 16, 7, 7)
    results = {}
    for impl, loss in losses.items():
        feats = [f.clone().requires_grad_() for f in student]
        value = loss(feats, teacher, rois)
        value.backward()
        results[impl] = (value.detach(), [f.grad for f in feats])
    torch.testing.assert_close(results['sparse'][0], results['mmcv'][0])
    for a, b in zip(results['sparse'][1], results['mmcv'][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    with pytest.raises(ValueError, match='roi_align_impl'):
        SGFILoss(student_channels=8, teacher_channels=16,
                 featmap_strides=STRIDES, roi_align_impl='cuda')
