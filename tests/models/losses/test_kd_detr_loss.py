"""KDDETRLoss against a point-by-point loop written from the authors'
``KDCriterion`` (``loss_kl_div``, ``loss_boxes``), gradients, and edge
cases."""
import math

import pytest
import torch

from sea_kd.models.losses import KDDETRLoss


def reference(s_cls, s_box, t_cls, t_box, temp=10.0):
    """Plain loops: per layer, per point, per class; GIoU by hand."""
    layers, batch, points, classes = s_cls.shape
    cls = l1 = giou = 0.0
    for layer in range(layers):
        kl_sum = l1_sum = giou_sum = w_sum = 0.0
        for b in range(batch):
            for i in range(points):
                t = [float(x) for x in t_cls[b, i]]
                s = [float(x) for x in s_cls[layer, b, i]]
                w = max(1 / (1 + math.exp(-x)) for x in t)
                zt = sum(math.exp(x / temp) for x in t)
                zs = sum(math.exp(x / temp) for x in s)
                kl = 0.0
                for c in range(classes):
                    p = math.exp(t[c] / temp) / zt
                    q = math.exp(s[c] / temp) / zs
                    kl += p * (math.log(p) - math.log(q))
                # mean over the classes, times T², weighted sum
                kl_sum += w * kl / classes * temp**2
                sb = [float(x) for x in s_box[layer, b, i]]
                tb = [float(x) for x in t_box[b, i]]
                l1_sum += w * sum(abs(x - y) for x, y in zip(sb, tb)) / 4
                a = (sb[0] - sb[2] / 2, sb[1] - sb[3] / 2,
                     sb[0] + sb[2] / 2, sb[1] + sb[3] / 2)
                c_ = (tb[0] - tb[2] / 2, tb[1] - tb[3] / 2,
                      tb[0] + tb[2] / 2, tb[1] + tb[3] / 2)
                iw = max(0.0, min(a[2], c_[2]) - max(a[0], c_[0]))
                ih = max(0.0, min(a[3], c_[3]) - max(a[1], c_[1]))
                inter = iw * ih
                union = sb[2] * sb[3] + tb[2] * tb[3] - inter
                hull = (max(a[2], c_[2]) - min(a[0], c_[0])) * \
                    (max(a[3], c_[3]) - min(a[1], c_[1]))
                g = inter / union - (hull - union) / hull
                giou_sum += w * (1 - g)
                w_sum += w
        cls += kl_sum
        l1 += l1_sum / w_sum
        giou += giou_sum / w_sum
    return cls, l1, giou


def random_outputs(layers=3, batch=2, points=5, classes=4, seed=0,
                   dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    s_cls = torch.randn(layers, batch, points, classes, generator=g) * 3
    t_cls = torch.randn(batch, points, classes, generator=g) * 3
    s_box = torch.rand(layers, batch, points, 4, generator=g) * 0.5 + 0.1
    t_box = torch.rand(batch, points, 4, generator=g) * 0.5 + 0.1
    return [x.to(dtype) for x in (s_cls, s_box, t_cls, t_box)]


@pytest.mark.parametrize('temp', [10.0, 1.0])
def test_the_terms_match_a_point_by_point_loop(temp):
    s_cls, s_box, t_cls, t_box = random_outputs()
    loss = KDDETRLoss(temperature=temp, loss_weight_cls=1.0,
                      loss_weight_l1=1.0, loss_weight_giou=1.0)
    out = loss(s_cls, s_box, t_cls, t_box)
    cls, l1, giou = reference(s_cls, s_box, t_cls, t_box, temp)
    assert out['cls'].item() == pytest.approx(cls, rel=1e-9)
    assert out['l1'].item() == pytest.approx(l1, rel=1e-9)
    assert out['giou'].item() == pytest.approx(giou, rel=1e-9)


def test_the_weights_scale_each_term():
    outputs = random_outputs()
    plain = KDDETRLoss(loss_weight_cls=1, loss_weight_l1=1,
                       loss_weight_giou=1)(*outputs)
    weighted = KDDETRLoss()(*outputs)  # the authors' 1, 5, 2
    for term, factor in (('cls', 1), ('l1', 5), ('giou', 2)):
        assert weighted[term].item() == pytest.approx(
            factor * plain[term].item(), rel=1e-12)


def test_the_class_term_is_a_sum_over_points_and_the_box_terms_means():
    """Twice the points (the same ones again): the class term doubles, the
    box terms stay (the authors' normalisers)."""
    s_cls, s_box, t_cls, t_box = random_outputs()
    once = KDDETRLoss()(s_cls, s_box, t_cls, t_box)
    twice = KDDETRLoss()(
        torch.cat([s_cls, s_cls], 2), torch.cat([s_box, s_box], 2),
        torch.cat([t_cls, t_cls], 1), torch.cat([t_box, t_box], 1))
    assert twice['cls'].item() == pytest.approx(2 * once['cls'].item())
    assert twice['l1'].item() == pytest.approx(once['l1'].item())
    assert twice['giou'].item() == pytest.approx(once['giou'].item())


def test_gradients_reach_the_student_only():
    s_cls, s_box, t_cls, t_box = random_outputs(dtype=torch.float32)
    for x in (s_cls, s_box, t_cls, t_box):
        x.requires_grad_(True)
    out = KDDETRLoss()(s_cls, s_box, t_cls, t_box)
    sum(out.values()).backward()
    assert s_cls.grad.abs().sum() > 0 and s_box.grad.abs().sum() > 0
    assert t_cls.grad is None and t_box.grad is None


def test_a_student_equal_to_its_teacher_has_zero_loss():
    _, _, t_cls, t_box = random_outputs()
    out = KDDETRLoss()(t_cls.expand(3, -1, -1, -1),
                       t_box.expand(3, -1, -1, -1), t_cls, t_box)
    for value in out.values():
        assert value.abs().item() < 1e-12


def test_one_class_has_no_class_term_but_box_terms():
    """A softmax over one class is 1 whatever the logits: nothing to
    distil in the class term; the box terms still teach."""
    s_cls, s_box, t_cls, t_box = random_outputs(classes=1)
    out = KDDETRLoss()(s_cls, s_box, t_cls, t_box)
    assert out['cls'].abs().item() < 1e-12
    assert out['l1'] > 0 and out['giou'] > 0


def test_a_teacher_without_foreground_does_not_divide_by_zero():
    """Every foreground weight underflows to 0 in float32: the box terms
    are 0, not NaN."""
    s_cls, s_box, t_cls, t_box = random_outputs(dtype=torch.float32)
    t_cls = torch.full_like(t_cls, -200.0)
    assert t_cls.sigmoid().sum() == 0
    out = KDDETRLoss()(s_cls, s_box, t_cls, t_box)
    assert out['l1'].item() == 0 and out['giou'].item() == 0
    assert torch.isfinite(out['cls'])


def test_bf16_inputs_give_float32_terms_close_to_float32():
    s_cls, s_box, t_cls, t_box = random_outputs(dtype=torch.float32)
    full = KDDETRLoss()(s_cls, s_box, t_cls, t_box)
    half = KDDETRLoss()(*(x.bfloat16() for x in (s_cls, s_box, t_cls,
                                                   t_box)))
    for term in full:
        assert half[term].dtype == torch.float32
        assert half[term].item() == pytest.approx(full[term].item(),
                                                  rel=0.05)


def test_a_temperature_not_above_zero_is_refused():
    with pytest.raises(ValueError, match='temperature'):
        KDDETRLoss(temperature=0)
