"""FGD's pieces against a plain-loop reference of the authors' algorithm
(yzd-v/FGD, mmdet/distillation/losses/fgd.py): per-image, per-box mask
painting by slicing, element loops for the weighted sums."""
import math

import pytest
import torch

from sea_kd.models.losses.focal_global_loss import (GlobalContextBlock,
                                                    attention_loss,
                                                    fgd_attention,
                                                    focal_box_masks,
                                                    focal_feature_loss,
                                                    global_loss)


def reference_masks(boxes_per_image, h, w, stride):
    """The authors' painting loop, boxes mapped to cells by the stride."""
    fg = [[[0.0] * w for _ in range(h)] for _ in boxes_per_image]
    bg = []
    for b, boxes in enumerate(boxes_per_image):
        for x1, y1, x2, y2 in boxes:
            wmin, wmax = math.floor(x1 / stride), math.ceil(x2 / stride)
            hmin, hmax = math.floor(y1 / stride), math.ceil(y2 / stride)
            area = 1.0 / ((hmax + 1 - hmin) * (wmax + 1 - wmin))
            for j in range(hmin, min(hmax + 1, h)):
                for i in range(wmin, min(wmax + 1, w)):
                    fg[b][j][i] = max(fg[b][j][i], area)
        free = [[1.0 if fg[b][j][i] == 0 else 0.0 for i in range(w)]
                for j in range(h)]
        total = sum(map(sum, free))
        bg.append([[v / total if total else 0.0 for v in row]
                   for row in free])
    return torch.tensor(fg), torch.tensor(bg)


def padded(boxes_per_image):
    g = max(len(b) for b in boxes_per_image)
    boxes = torch.zeros(len(boxes_per_image), g, 4)
    valid = torch.zeros(len(boxes_per_image), g, dtype=torch.bool)
    for k, b in enumerate(boxes_per_image):
        if b:
            boxes[k, :len(b)] = torch.tensor(b)
            valid[k, :len(b)] = True
    return boxes, valid


def test_strides_differ_per_axis():
    # s_x = 8, s_y = 16: box (8, 16, 16, 32) covers columns 1..2, rows 1..2
    boxes, valid = padded([[(8., 16., 16., 32.)]])
    fg, _ = focal_box_masks(boxes, valid, (4, 4), (8., 16.))
    assert fg[0].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    assert fg[0, 1, 1].item() == pytest.approx(1 / 4)


def test_hand_computed_masks():
    # stride 8, box (4, 4, 12, 12): cells 0..2 on both axes (floor 0.5 = 0,
    # ceil 1.5 = 2), 9 cells, weight 1/9; 16 - 9 = 7 background cells
    boxes, valid = padded([[(4., 4., 12., 12.)]])
    fg, bg = focal_box_masks(boxes, valid, (4, 4), (8., 8.))
    assert fg[0, :3, :3].eq(1 / 9).all() and fg[0, 3].eq(0).all()
    assert bg[0, 3, 3].item() == pytest.approx(1 / 7)
    assert bg.sum().item() == pytest.approx(1.0)


def test_masks_match_the_authors_loop_with_overlaps_and_empty_images():
    images = [[(3., 5., 30., 21.), (10., 0., 17., 40.), (0., 0., 60., 60.)],
              [],
              [(8., 8., 16., 16.)]]
    boxes, valid = padded(images)
    for stride, (h, w) in ((8., (8, 8)), (16., (4, 4))):
        fg, bg = focal_box_masks(boxes, valid, (h, w), (stride, stride))
        ref_fg, ref_bg = reference_masks(images, h, w, stride)
        assert torch.allclose(fg, ref_fg) and torch.allclose(bg, ref_bg)
    # the whole map foreground: no background left, and no division by 0
    fg, bg = focal_box_masks(*padded([[(0., 0., 64., 64.)]]), (4, 4),
                             (16., 16.))
    assert fg.gt(0).all() and bg.eq(0).all()
    # no box in any image
    fg, bg = focal_box_masks(torch.zeros(2, 0, 4),
                             torch.zeros(2, 0, dtype=torch.bool), (3, 5),
                             (8., 8.))
    assert fg.eq(0).all() and bg.sum((1, 2)).allclose(torch.ones(2))


def loop_attention(x, temperatures):
    """A^S and A^C of ``x`` (N, C, H, W) by element loops, image ``n`` at
    temperature ``temperatures[n]``, as nested lists."""
    n_img, c_n, h, w = x.shape
    spatial, channel = [], []
    for n in range(n_img):
        t = temperatures[n]
        means = [[sum(abs(float(x[n, c, j, i])) for c in range(c_n)) / c_n
                  for i in range(w)] for j in range(h)]
        z = sum(math.exp(m / t) for row in means for m in row)
        spatial.append([[h * w * math.exp(means[j][i] / t) / z
                         for i in range(w)] for j in range(h)])
        cm = [sum(abs(float(v)) for v in x[n, c].flatten()) / (h * w)
              for c in range(c_n)]
        zc = sum(math.exp(m / t) for m in cm)
        channel.append([c_n * math.exp(m / t) / zc for m in cm])
    return spatial, channel


def assert_attention_equals(x, temperature, relative, temperatures):
    spatial, channel = fgd_attention(x, temperature, relative)
    ref_s, ref_c = loop_attention(x, temperatures)
    assert torch.allclose(spatial, torch.tensor(ref_s), rtol=1e-5)
    assert torch.allclose(channel, torch.tensor(ref_c), rtol=1e-5)


def test_attention_against_loops():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g)
    assert_attention_equals(x, 0.5, False, [0.5, 0.5])


def test_relative_attention_is_the_absolute_one_at_t_times_mean_abs():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=g)
    x[1] *= 7.0  # the two images at different scales
    means = [sum(abs(float(v)) for v in x[n].flatten()) / 60
             for n in range(2)]
    assert_attention_equals(x, 0.5, True, [0.5 * m for m in means])


def test_relative_attention_does_not_depend_on_the_scale():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 3, 3, generator=g)
    small_s, small_c = fgd_attention(x, 0.5, relative=True)
    large_s, large_c = fgd_attention(40.0 * x, 0.5, relative=True)
    assert torch.allclose(small_s, large_s, rtol=1e-5)
    assert torch.allclose(small_c, large_c, rtol=1e-5)
    # the absolute temperature does depend on it: larger maps, sharper
    # attention
    assert fgd_attention(40.0 * x, 0.5)[1].amax() > small_c.amax() * 1.5


def test_relative_attention_gradient():
    # gradcheck in double precision, the scale included; and since the
    # relative attention does not change when the map is scaled, the
    # gradient of any loss on it has no component along the map itself
    # (sum F * dL/dF = 0), which fails if the scale were detached
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 3, 4, generator=g, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    weights = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    weights_c = torch.randn(2, 3, generator=g, dtype=torch.float64)

    def loss(feat):
        spatial, channel = fgd_attention(feat, 0.5, relative=True)
        return (spatial * weights).sum() + (channel * weights_c).sum()

    assert torch.autograd.gradcheck(loss, (x, ))
    grad, = torch.autograd.grad(loss(x), x)
    assert grad.abs().sum() > 1e-3
    assert (grad * x).sum().abs().item() < 1e-9


def test_relative_attention_of_zeros_is_uniform():
    # no 0/0: the scale is clamped, and the attention stays finite
    spatial, channel = fgd_attention(torch.zeros(1, 3, 2, 2), 0.5,
                                     relative=True)
    assert torch.equal(spatial, torch.ones(1, 2, 2))
    assert torch.equal(channel, torch.ones(1, 3))


def test_focal_and_attention_losses_against_loops():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4,
                                                            generator=g)
    boxes, valid = padded([[(0., 0., 9., 9.)], [(20., 4., 31., 30.)]])
    fg, bg = focal_box_masks(boxes, valid, (4, 4), (8., 8.))
    st, ct = fgd_attention(t, 0.5)
    ss, cs = fgd_attention(s, 0.5)
    loss_fg, loss_bg = focal_feature_loss(s, t, fg, bg, st, ct)
    exp_fg = exp_bg = 0.0
    for n in range(2):
        for c in range(3):
            for j in range(4):
                for i in range(4):
                    d = float(s[n, c, j, i] - t[n, c, j, i])**2 * \
                        float(st[n, j, i]) * float(ct[n, c])
                    exp_fg += d * float(fg[n, j, i])
                    exp_bg += d * float(bg[n, j, i])
    assert loss_fg.item() == pytest.approx(exp_fg / 2, rel=1e-5)
    assert loss_bg.item() == pytest.approx(exp_bg / 2, rel=1e-5)
    expected_at = (sum(abs(float(a - b)) for a, b in zip(
        ct.flatten(), cs.flatten())) + sum(abs(float(a - b)) for a, b in zip(
            st.flatten(), ss.flatten()))) / 2
    assert attention_loss(ss, cs, st, ct).item() == pytest.approx(
        expected_at, rel=1e-5)


def test_global_block_starts_as_identity_and_matches_a_loop():
    torch.manual_seed(0)
    block = GlobalContextBlock(4)
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(block(x), x)  # last conv zero-initialised
    torch.nn.init.normal_(block.transform[-1].weight)
    torch.nn.init.normal_(block.transform[1].weight)  # layer norm's affine
    torch.nn.init.normal_(block.transform[1].bias)
    out = block(x)
    with torch.no_grad():
        check_block_by_loops(block, x, out)
    with pytest.raises(ValueError, match='at least 2 channels'):
        GlobalContextBlock(1)


def check_block_by_loops(block, x, out):
    """The block written out by hand from its weights: 1x1 conv logits,
    softmax over positions, weighted sum, then 1x1 conv, layer norm over
    the C/2 values, ReLU, 1x1 conv, added to every position."""
    wk = block.context_mask.weight.reshape(-1)
    bk = float(block.context_mask.bias)
    conv1, norm, _, conv2 = block.transform
    w1, b1 = conv1.weight.reshape(conv1.out_channels, -1), conv1.bias
    w2, b2 = conv2.weight.reshape(conv2.out_channels, -1), conv2.bias
    gamma, beta = norm.weight.reshape(-1), norm.bias.reshape(-1)
    c = x.shape[1]
    for n in range(x.shape[0]):
        cols = x[n].reshape(c, -1)
        logits = [sum(float(wk[i]) * float(cols[i, k]) for i in range(c)) +
                  bk for k in range(cols.shape[1])]
        z = sum(math.exp(v) for v in logits)
        context = [sum(math.exp(logits[k]) / z * float(cols[i, k])
                       for k in range(cols.shape[1])) for i in range(c)]
        hidden = [sum(float(w1[j, i]) * context[i] for i in range(c)) +
                  float(b1[j]) for j in range(len(b1))]
        mean = sum(hidden) / len(hidden)
        var = sum((h - mean)**2 for h in hidden) / len(hidden)
        normed = [max(0.0, (h - mean) / math.sqrt(var + norm.eps) *
                      float(gamma[j]) + float(beta[j]))
                  for j, h in enumerate(hidden)]
        add = [sum(float(w2[i, j]) * normed[j] for j in range(len(normed))) +
               float(b2[i]) for i in range(c)]
        for i in range(c):
            assert torch.allclose(out[n, i], x[n, i] + add[i], atol=1e-5)


def test_global_block_initialisation():
    torch.manual_seed(0)
    block = GlobalContextBlock(256)
    w = block.context_mask.weight
    # Kaiming normal, fan in (256), ReLU gain: std sqrt(2 / 256)
    assert w.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.15)
    assert block.context_mask.bias.abs().max() == 0
    assert block.transform[-1].weight.abs().max() == 0
    assert block.transform[-1].bias.abs().max() == 0


def test_global_loss_gradient_reaches_student_and_both_blocks():
    torch.manual_seed(0)
    bs, bt = GlobalContextBlock(4), GlobalContextBlock(4)
    s = torch.randn(2, 4, 3, 3, requires_grad=True)
    t = torch.randn(2, 4, 3, 3)
    loss = global_loss(s, t, bs, bt)
    assert loss.item() == pytest.approx(((s - t)**2).sum().item() / 2,
                                        rel=1e-6)
    loss.backward()
    assert s.grad.abs().sum() > 0
    assert bs.transform[-1].weight.grad.abs().sum() > 0
    assert bt.transform[-1].weight.grad.abs().sum() > 0
