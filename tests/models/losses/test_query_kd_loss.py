"""QueryKDLoss (HMLD's terms) against a plain per-pair reference."""
import math

import pytest
import torch

from sea_kd.models.losses import QueryKDLoss


def _giou(a, b):
    """GIoU of two pixel (x1, y1, x2, y2) boxes, by hand."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * \
        (max(a[3], b[3]) - min(a[1], b[1]))
    iou = inter / union
    return iou - (hull - union) / hull


def _xyxy(box, w, h):
    cx, cy, bw, bh = box
    return [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
            (cy + bh / 2) * h]


def reference(s_cls, t_cls, s_box, t_box, scale, groups, num_groups,
              use_sigmoid, w=(1.0, 5.0, 2.0)):
    """The three terms, one pair at a time in plain Python."""
    sums = [[0.0] * num_groups for _ in range(3)]
    counts = [0] * num_groups
    for n in range(len(groups)):
        g = int(groups[n])
        counts[g] += 1
        s, t = s_cls[n].tolist(), t_cls[n].tolist()
        if use_sigmoid:
            ce = 0.0
            for sc, tc in zip(s, t):
                p = 1 / (1 + math.exp(-tc))
                q = 1 / (1 + math.exp(-sc))
                ce += -p * math.log(q) - (1 - p) * math.log(1 - q)
        else:
            z = sum(math.exp(v) for v in t)
            p = [math.exp(v) / z for v in t]
            zs = sum(math.exp(v) for v in s)
            ce = -sum(pc * math.log(math.exp(sc) / zs)
                      for pc, sc in zip(p, s))
        sums[0][g] += ce
        sums[1][g] += sum(abs(a - b) for a, b in
                          zip(s_box[n].tolist(), t_box[n].tolist()))
        wd, ht = float(scale[n, 0]), float(scale[n, 1])
        sums[2][g] += 1 - _giou(_xyxy(s_box[n].tolist(), wd, ht),
                                _xyxy(t_box[n].tolist(), wd, ht))
    return [w[k] * sum(sums[k][g] / max(counts[g], 1)
                       for g in range(num_groups)) for k in range(3)]


def _pairs(n=7, c=4, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    s_cls = torch.randn(n, c, generator=g, dtype=dtype)
    t_cls = torch.randn(n, c, generator=g, dtype=dtype) * 2
    s_box = torch.rand(n, 4, generator=g, dtype=dtype) * 0.4 + 0.2
    t_box = torch.rand(n, 4, generator=g, dtype=dtype) * 0.4 + 0.2
    scale = torch.tensor([[64., 48., 64., 48.]], dtype=dtype).repeat(n, 1)
    scale[::2] = torch.tensor([32., 40., 32., 40.], dtype=dtype)
    groups = torch.tensor([0, 1, 1, 2, 0, 1, 0][:n])
    return s_cls, t_cls, s_box, t_box, scale, groups


@pytest.mark.parametrize('use_sigmoid', [True, False])
def test_matches_the_plain_reference(use_sigmoid):
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs()
    loss = QueryKDLoss(use_sigmoid=use_sigmoid)
    out = loss(s_cls, t_cls, s_box, t_box, scale, groups, 4)  # group 3 empty
    ref = reference(s_cls, t_cls, s_box, t_box, scale, groups, 4,
                    use_sigmoid)
    for key, want in zip(('cls', 'l1', 'giou'), ref):
        assert out[key].item() == pytest.approx(want, rel=1e-5), key


def test_weights_scale_each_term():
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs()
    base = QueryKDLoss()(s_cls, t_cls, s_box, t_box, scale, groups, 3)
    out = QueryKDLoss(loss_weight_cls=2.0, loss_weight_l1=1.0,
                      loss_weight_giou=0.5)(s_cls, t_cls, s_box, t_box,
                                            scale, groups, 3)
    assert out['cls'].item() == pytest.approx(2 * base['cls'].item())
    assert out['l1'].item() == pytest.approx(base['l1'].item() / 5)
    assert out['giou'].item() == pytest.approx(base['giou'].item() / 4)


def test_identical_boxes_give_zero_box_terms_and_the_teacher_entropy():
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs()
    out = QueryKDLoss()(t_cls, t_cls, t_box, t_box, scale, groups, 3)
    assert out['l1'].item() == 0
    assert out['giou'].item() == pytest.approx(0, abs=1e-6)
    p = t_cls.sigmoid()
    entropy = -(p * p.log() + (1 - p) * (1 - p).log()).sum(-1)
    counts = torch.bincount(groups, minlength=3).float()
    assert out['cls'].item() == pytest.approx(
        (entropy / counts[groups]).sum().item(), rel=1e-5)


@pytest.mark.parametrize('use_sigmoid', [True, False])
def test_gradient(use_sigmoid):
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs(
        n=5, c=3, dtype=torch.float64)
    loss = QueryKDLoss(use_sigmoid=use_sigmoid)
    s_cls.requires_grad_(True)
    s_box.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda cls, box: torch.stack(list(loss(
            cls, t_cls, box, t_box, scale, groups, 3).values())),
        (s_cls, s_box))


def test_the_teacher_gets_no_gradient():
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs()
    t_cls.requires_grad_(True)
    t_box.requires_grad_(True)
    s_cls.requires_grad_(True)
    out = QueryKDLoss()(s_cls, t_cls, s_box, t_box, scale, groups, 3)
    sum(out.values()).backward()
    assert t_cls.grad is None and t_box.grad is None
    assert s_cls.grad.abs().sum() > 0


def test_no_pairs_give_zero_terms_with_the_students_graph():
    s_cls = torch.randn(3, 4, requires_grad=True)
    idx = torch.zeros(0, dtype=torch.long)
    out = QueryKDLoss()(s_cls[idx], torch.randn(3, 4)[idx],
                        torch.rand(3, 4)[idx], torch.rand(3, 4)[idx],
                        torch.ones(0, 4), idx, 2)
    total = sum(out.values())
    assert total.item() == 0
    total.backward()
    assert s_cls.grad.abs().sum() == 0


def test_one_class():
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs(c=1)
    out = QueryKDLoss()(s_cls, t_cls, s_box, t_box, scale, groups, 3)
    ref = reference(s_cls, t_cls, s_box, t_box, scale, groups, 3, True)
    assert out['cls'].item() == pytest.approx(ref[0], rel=1e-5)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    pairs = _pairs()
    out = QueryKDLoss()(*(x.to(dtype) if x.is_floating_point() else x
                          for x in pairs[:5]), pairs[5], 3)
    rounded = [x.to(dtype).float() for x in pairs[:5]]
    ref = reference(*rounded, pairs[5], 3, True)
    for key, want in zip(('cls', 'l1', 'giou'), ref):
        assert out[key].dtype == torch.float32
        assert out[key].item() == pytest.approx(want, rel=1e-4), key


def test_mixed_float64_and_float32_sides():
    s_cls, t_cls, s_box, t_box, scale, groups = _pairs()
    out = QueryKDLoss()(s_cls.double(), t_cls, s_box.double(), t_box,
                        scale, groups, 3)
    ref = reference(s_cls, t_cls, s_box, t_box, scale, groups, 3, True)
    assert out['cls'].dtype == torch.float64
    assert out['cls'].item() == pytest.approx(ref[0], rel=1e-5)
