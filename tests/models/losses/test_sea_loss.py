"""SEALoss: anchors, relations and the loss against hand-computed values and
a plain per-image, per-pixel reference."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from sea_kd.models.losses.sea_loss import (SEALoss, category_anchors,
                                           relation_kl, relation_logits)
from sea_kd.models.utils import category_masks, pixel_centres

STRIDES = [8, 16, 32]


def feats(channels, batch=2, seed=0, dtype=torch.float32, size=(64, 64)):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, channels, size[0] // s, size[1] // s,
                        generator=gen).to(dtype) for s in STRIDES]


def gt(boxes, labels):
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32)
                        .reshape(-1, 4),
                        labels=torch.tensor(labels, dtype=torch.long))


def metas(*shapes, batch_input_shape=(64, 64)):
    return [dict(img_shape=s, batch_input_shape=batch_input_shape)
            for s in shapes]


GTS = [gt([[0, 0, 30, 40], [20, 10, 60, 50]], [0, 2]),
       gt([[8, 8, 40, 24]], [1])]
METAS = metas((64, 64), (48, 56))


def reference_loss(s_feats, t_feats, gts, img_metas, tau=0.1, bg=True,
                   balance=True, w_fg=1.0, w_bg=1.0, distance='cosine',
                   scope='image', per_level=False, relation='kl'):
    """Plain loops over images, anchors and pixels."""
    centres = pixel_centres([f.shape[-2:] for f in s_feats], STRIDES)
    masks = category_masks(gts, img_metas, centres)
    rows = [masks.classes[:, k] for k in range(masks.classes.shape[1])]
    if bg:
        rows.append(masks.background)
    level_of = torch.cat([torch.full((f.shape[-2] * f.shape[-1], ), lvl)
                          for lvl, f in enumerate(s_feats)])
    if per_level:  # one region per (class, level)
        rows = [m & (level_of == lvl) for lvl in range(len(s_feats))
                for m in rows]
        region_level = [lvl for lvl in range(len(s_feats))
                        for _ in range(len(rows) // len(s_feats))]
    else:
        region_level = [None] * len(rows)

    def flat(fs, b):
        return torch.cat([f[b].reshape(f.shape[1], -1).T for f in fs]).double()

    def anchors_of(fs):
        out = []
        for k, m in enumerate(rows):
            if scope == 'batch':
                total = sum(flat(fs, b)[m[b]].sum(0) for b in range(len(gts)))
                count = int(m.sum())
                out.append([total / count if count else None] * len(gts))
            else:
                out.append([flat(fs, b)[m[b]].mean(0) if m[b].any() else None
                            for b in range(len(gts))])
        return out

    a_s, a_t = anchors_of(s_feats), anchors_of(t_feats)
    fg_kl, bg_kl = [], []
    for b in range(len(gts)):
        fs_b, ft_b = flat(s_feats, b), flat(t_feats, b)
        for i in range(fs_b.shape[0]):
            present = [k for k in range(len(rows)) if a_s[k][b] is not None
                       and region_level[k] in (None, int(level_of[i]))]
            if not present or not masks.valid[b, i]:
                continue

            def sims(f, anchors):
                vals = []
                for k in present:
                    a = anchors[k][b]
                    if distance == 'cosine':
                        v = torch.dot(f, a) / (f.norm() * a.norm())
                    else:
                        v = -(f - a).pow(2).sum()
                    vals.append(v)
                return torch.stack(vals)

            if relation == 'kl':
                p_t = (sims(ft_b[i], a_t) / tau).softmax(0)
                log_p_s = (sims(fs_b[i], a_s) / tau).log_softmax(0)
                value = (p_t * (p_t.log() - log_p_s)).sum()
            else:
                value = (sims(ft_b[i], a_t) -
                         sims(fs_b[i], a_s)).pow(2).mean()
            (fg_kl if masks.foreground[b, i] else bg_kl).append(value)

    def mean(x):
        return sum(x) / len(x) if x else 0.0
    if balance:
        value = w_fg * mean(fg_kl) + w_bg * mean(bg_kl)
    else:
        value = mean(fg_kl + bg_kl)
    return (tau**2 if relation == 'kl' else 1.0) * float(value)


def test_anchors_by_hand():
    # one image, 4 pixels, 2 channels; class 0 on pixels 0-1, bg on 2-3
    f = torch.tensor([[[1., 0.], [3., 2.], [0., 4.], [0., 2.]]])
    m = torch.tensor([[[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]]).bool()
    anchors, present = category_anchors(f, m)
    assert anchors[0].tolist() == [[2., 1.], [0., 0.], [0., 3.]]
    assert present.tolist() == [[True, False, True]]
    # batch scope: pooled over both images
    f2 = torch.cat([f, f + 1])
    m2 = torch.cat([m, torch.tensor([[[1, 0, 0, 0], [0, 1, 0, 0],
                                      [0, 0, 0, 0]]]).bool()])
    anchors, present = category_anchors(f2, m2, scope='batch')
    # class 0: pixels (1,0), (3,2) of image 0 and (2,1) of image 1
    assert anchors[0, 0].tolist() == pytest.approx([2., 1.])
    assert anchors[1, 1].tolist() == [4., 3.]
    assert torch.equal(anchors[0], anchors[1])
    assert present.tolist() == [[True, True, True]] * 2
    with pytest.raises(ValueError, match='scope'):
        category_anchors(f, m, scope='level')


def test_relations_by_hand():
    f = torch.tensor([[[1., 0.], [1., 1.]]])
    a = torch.tensor([[[2., 0.], [0., 3.]]])
    r = relation_logits(f, a, temperature=0.5)
    s = 1 / math.sqrt(2)
    assert torch.allclose(r[0], torch.tensor([[2., 0.], [2 * s, 2 * s]]))
    r = relation_logits(f, a, temperature=2.0, distance='l2')
    assert torch.allclose(r[0], torch.tensor([[-0.5, -5.], [-1., -2.5]]))
    # KL over the present anchors only: anchor 1 is absent
    t = torch.tensor([[[1., 7., 0.]]])
    s_ = torch.tensor([[[0., -3., 1.]]])
    present = torch.tensor([[True, False, True]])
    p_t = torch.tensor([1., 0.]).softmax(0)
    p_s = torch.tensor([0., 1.]).softmax(0)
    expected = (p_t * (p_t.log() - p_s.log())).sum()
    assert relation_kl(t, s_, present)[0, 0].item() == pytest.approx(
        expected.item())
    # no anchor at all: 0, not NaN
    assert relation_kl(t, s_, torch.zeros(1, 3, dtype=torch.bool)).item() == 0


def test_cosine_relations_equal_normalised_features_with_gradients():
    """The pixel's norm is divided out of the (B, N, K) products: values
    and gradients equal those of normalising both sides first, a zero
    pixel included (its norm floored at eps: 0, not NaN)."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 9, 5, generator=g, dtype=torch.float64)
    f[0, 3] = 0.
    a = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    f1, a1 = f.clone().requires_grad_(), a.clone().requires_grad_()
    f2, a2 = f.clone().requires_grad_(), a.clone().requires_grad_()
    r1 = relation_logits(f1, a1, temperature=0.3, eps=1e-6)
    r2 = torch.bmm(torch.nn.functional.normalize(f2, dim=-1, eps=1e-6),
                   torch.nn.functional.normalize(a2, dim=-1, eps=1e-6)
                   .transpose(1, 2)) / 0.3
    assert torch.allclose(r1, r2) and torch.all(r1[0, 3] == 0)
    w = torch.randn(r1.shape, generator=g, dtype=torch.float64)
    (r1 * w).sum().backward()
    (r2 * w).sum().backward()
    assert torch.allclose(f1.grad, f2.grad) and torch.allclose(a1.grad,
                                                               a2.grad)
    assert torch.isfinite(f1.grad).all()


@pytest.mark.parametrize('options', [
    dict(),
    dict(balance=False),
    dict(fg_weight=2.0, bg_weight=0.5),
    dict(background_anchor=False),
    dict(distance='l2', temperature=50.0),
    dict(anchor_scope='batch'),
    dict(anchor_levels='per_level'),
    dict(anchor_levels='per_level', anchor_scope='batch', balance=False),
    dict(relation_loss='mse'),
    dict(relation_loss='mse', distance='l2', anchor_levels='per_level'),
])
def test_loss_matches_plain_reference(options):
    s, t = feats(8, seed=1), feats(16, seed=2)  # different channels
    loss = SEALoss(**options)(s, t, GTS, METAS)
    expected = reference_loss(
        s, t, GTS, METAS, tau=options.get('temperature', 0.1),
        bg=options.get('background_anchor', True),
        balance=options.get('balance', True),
        w_fg=options.get('fg_weight', 1.0),
        w_bg=options.get('bg_weight', 1.0),
        distance=options.get('distance', 'cosine'),
        scope=options.get('anchor_scope', 'image'),
        per_level=options.get('anchor_levels') == 'per_level',
        relation=options.get('relation_loss', 'kl'))
    assert set(loss) == {'rel'}
    assert loss['rel'].item() == pytest.approx(expected, rel=1e-4)
    assert loss['rel'].item() > 0


def test_zero_for_equal_features_positive_otherwise():
    t = feats(8, seed=3)
    loss = SEALoss(anchor_weight=1.0)
    out = loss([f.clone() for f in t], t, GTS, METAS)
    assert out['rel'].item() == 0 and out['anc'].item() == 0
    # cosine relations do not see a positive rescaling of the features
    assert loss([2 * f for f in t], t, GTS, METAS)['rel'].item() == \
        pytest.approx(0, abs=1e-7)
    assert loss(feats(8, seed=4), t, GTS, METAS)['rel'].item() > 0


def test_gradients_reach_student_never_teacher():
    s = [f.requires_grad_() for f in feats(8, seed=5)]
    t = [f.requires_grad_() for f in feats(8, seed=6)]
    out = SEALoss(anchor_weight=0.5)(s, t, GTS, METAS)
    (out['rel'] + out['anc']).backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in s)
    assert all(f.grad is None for f in t)


def test_images_without_ground_truth():
    empty = [gt([], []), gt([], [])]
    s = [f.requires_grad_() for f in feats(8, seed=7)]
    t = feats(8, seed=8)
    # background anchor only: one anchor per image, the relation is trivial
    out = SEALoss(anchor_weight=1.0)(s, t, empty, METAS)
    assert torch.isfinite(out['rel']) and out['rel'].item() == 0
    assert torch.isfinite(out['anc']) and out['anc'].item() > 0
    # no anchors at all: zero, with a zero gradient
    out = SEALoss(background_anchor=False, anchor_weight=1.0)(s, t, empty,
                                                              METAS)
    assert out['rel'].item() == 0 and out['anc'].item() == 0
    (out['rel'] + out['anc']).backward()
    assert all(torch.equal(f.grad, torch.zeros_like(f)) for f in s)
    # one image with, one without ground truth
    mixed = [GTS[0], gt([], [])]
    out = SEALoss()(feats(8, seed=7), t, mixed, METAS)
    assert out['rel'].item() == pytest.approx(
        reference_loss(feats(8, seed=7), t, mixed, METAS), rel=1e-4)


def test_padding_is_ignored():
    # image 1 is 40 x 24 inside a 64 x 64 batch: changing the features of
    # its padding changes nothing
    img_metas = metas((64, 64), (40, 24))
    s, t = feats(8, seed=9), feats(8, seed=10)
    base = SEALoss()(s, t, GTS, img_metas)['rel']
    changed = []
    for f, stride in zip(s, STRIDES):
        f = f.clone()
        ys = (torch.arange(f.shape[2]) + 0.5) * stride
        xs = (torch.arange(f.shape[3]) + 0.5) * stride
        pad = (ys[:, None] >= 40) | (xs[None] >= 24)
        f[1][:, pad] = 100 * torch.randn(int(pad.sum()))
        changed.append(f)
    assert SEALoss()(changed, t, GTS, img_metas)['rel'].item() == \
        pytest.approx(base.item(), rel=1e-6)
    # while the same change counts when the image fills the batch
    assert SEALoss()(changed, t, GTS, METAS[:1] * 2)['rel'].item() != \
        pytest.approx(SEALoss()(s, t, GTS, METAS[:1] * 2)['rel'].item(),
                      rel=1e-3)


def test_fp16_inputs_give_fp32_loss():
    s, t = feats(8, seed=11), feats(8, seed=12)
    ref = SEALoss()([f.half().float() for f in s],
                    [f.half().float() for f in t], GTS, METAS)['rel']
    half = SEALoss(anchor_weight=1.0)([f.half() for f in s],
                                      [f.half() for f in t], GTS, METAS)
    assert half['rel'].dtype == torch.float32
    assert torch.isfinite(half['anc'])
    assert half['rel'].item() == pytest.approx(ref.item(), rel=1e-5)


def test_one_class():
    one = [gt([[0, 0, 30, 40], [20, 10, 60, 50]], [0, 0]),
           gt([[8, 8, 40, 24]], [0])]
    s, t = feats(8, seed=13), feats(8, seed=14)
    out = SEALoss()(s, t, one, METAS)['rel']
    assert out.item() == pytest.approx(reference_loss(s, t, one, METAS),
                                       rel=1e-4)
    assert out.item() > 0


def test_instance_masks_used_when_present():
    from mmdet.structures.mask import BitmapMasks
    s, t = feats(8, seed=15), feats(8, seed=16)
    box = GTS[0].bboxes[0].tolist()  # 0, 0, 30, 40
    mask = torch.zeros(1, 64, 64, dtype=torch.bool)
    with_box_mask = gt([box], [1])
    mask[0, :40, :30] = True  # the box itself
    with_box_mask.masks = BitmapMasks(mask.numpy(), 64, 64)
    half = gt([box], [1])
    half_mask = mask.clone()
    half_mask[0, :, 15:] = False  # left half only
    half.masks = BitmapMasks(half_mask.numpy(), 64, 64)
    plain = gt([box], [1])
    left_box = gt([[0, 0, 15, 40]], [1])
    loss = SEALoss()

    def value(g):
        return loss(s, t, [g, g], metas((64, 64), (64, 64)))['rel'].item()
    assert value(with_box_mask) == pytest.approx(value(plain), rel=1e-6)
    assert value(half) == pytest.approx(value(left_box), rel=1e-6)
    assert value(half) != pytest.approx(value(plain), rel=1e-3)
    assert SEALoss(use_masks=False)(s, t, [half, half], metas(
        (64, 64), (64, 64)))['rel'].item() == pytest.approx(value(plain),
                                                            rel=1e-6)


def test_levels_and_explicit_strides():
    s, t = feats(8, seed=17), feats(8, seed=18)
    two = SEALoss(levels=[0, 2])(s, t, GTS, METAS)['rel']
    expected = SEALoss()([s[0], s[2]], [t[0], t[2]], GTS, METAS,
                         strides=[8, 32])['rel']
    assert two.item() == pytest.approx(expected.item(), rel=1e-6)
    no_shape = [dict(img_shape=m['img_shape']) for m in METAS]
    explicit = SEALoss()(s, t, GTS, no_shape, strides=[(8, 8), 16, 32])
    assert explicit['rel'].item() == pytest.approx(
        SEALoss()(s, t, GTS, METAS)['rel'].item(), rel=1e-6)
    with pytest.raises(ValueError, match='batch_input_shape'):
        SEALoss()(s, t, GTS, no_shape)


def test_anchor_alignment_with_adapter():
    s, t = feats(8, seed=19), feats(16, seed=20)
    loss = SEALoss(anchor_weight=2.0)
    with pytest.raises(ValueError, match='adapter'):
        loss(s, t, GTS, METAS)
    weight = torch.randn(16, 8, requires_grad=True)
    out = loss(s, t, GTS, METAS, anchor_adapter=lambda a: a @ weight.T)
    out['anc'].backward()
    assert weight.grad.abs().sum() > 0
    # by hand: mean over present anchors of the squared distance
    centres = pixel_centres([f.shape[-2:] for f in s], STRIDES)
    masks = category_masks(GTS, METAS, centres)
    regions = torch.cat([masks.classes, masks.background[:, None]], 1)
    flat_s = torch.cat([f.flatten(2).transpose(1, 2) for f in s], 1)
    flat_t = torch.cat([f.flatten(2).transpose(1, 2) for f in t], 1)
    dists = []
    for b in range(2):
        for k in range(regions.shape[1]):
            if regions[b, k].any():
                a_s = flat_s[b][regions[b, k]].mean(0) @ weight.T
                a_t = flat_t[b][regions[b, k]].mean(0)
                dists.append((a_s - a_t).pow(2).sum())
    assert out['anc'].item() == pytest.approx(
        2.0 * torch.stack(dists).mean().item(), rel=1e-5)


def test_bad_inputs_are_named():
    s, t = feats(8), feats(8)
    with pytest.raises(ValueError, match='out of range'):
        SEALoss(levels=[0, 3])(s, t, GTS, METAS)
    with pytest.raises(ValueError, match='number of student and teacher'):
        SEALoss()(s, t[:2], GTS, METAS)
    with pytest.raises(ValueError, match='spatial size'):
        SEALoss()(s, [t[0], t[2], t[2]], GTS, METAS)
    with pytest.raises(ValueError, match='2 ground-truth entries'):
        SEALoss()([f[:1] for f in s], [f[:1] for f in t], GTS, METAS)
    with pytest.raises(ValueError, match='different channel numbers'):
        SEALoss()([s[0], s[1][:, :4], s[2]], t, GTS, METAS)
    with pytest.raises(ValueError, match='2 strides given for 3'):
        SEALoss()(s, t, GTS, METAS, strides=[8, 16])
    with pytest.raises(ValueError, match='distance'):
        SEALoss(distance='cos')
    with pytest.raises(ValueError, match='temperature'):
        SEALoss(temperature=0)
    with pytest.raises(ValueError, match='anchor_scope'):
        SEALoss(anchor_scope='level')
    with pytest.raises(ValueError, match='distinct'):
        SEALoss(levels=[1, 1])


@pytest.mark.parametrize('options', [dict(anchor_levels='per_level'),
                                     dict(relation_loss='mse')])
def test_other_readings_gradients_edge_cases(options):
    """Gradient reaches the student only; bfloat16 inputs give a float32
    loss; images without ground truth give a finite loss; equal features
    give 0; a per-level anchor differs from the pooled one."""
    s = [f.requires_grad_(True) for f in feats(8, seed=1)]
    t = [f.requires_grad_(True) for f in feats(8, seed=2)]
    loss = SEALoss(**options)(s, t, GTS, METAS)['rel']
    loss.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in s)
    assert all(f.grad is None for f in t)
    bf16 = SEALoss(**options)([f.detach().bfloat16() for f in s],
                              [f.detach().bfloat16() for f in t], GTS,
                              METAS)['rel']
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16)
    empty = [gt([], []), gt([], [])]
    assert torch.isfinite(SEALoss(**options)(s, t, empty, METAS)['rel'])
    same = feats(8, seed=3)
    assert SEALoss(**options)(same, same, GTS, METAS)['rel'].item() == \
        pytest.approx(0.0, abs=1e-6)
    assert loss.item() != pytest.approx(
        SEALoss()(s, t, GTS, METAS)['rel'].item(), rel=1e-3)


def test_other_readings_bad_options_are_named():
    with pytest.raises(ValueError, match='anchor_levels'):
        SEALoss(anchor_levels='each')
    with pytest.raises(ValueError, match='relation_loss'):
        SEALoss(relation_loss='l1')
