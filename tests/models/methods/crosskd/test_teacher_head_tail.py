"""The tail runner gives the head's own outputs when it is handed the
head's own intermediate features."""
import pytest
import torch

from sea_kd.models.methods.crosskd.teacher_head_tail import (
    activates_given_features, check_tower_head, head_tail_forward,
    per_level_towers, tower_depth, tower_names)

from ....conftest import build, tiny_detector_cfg


def _tower_outputs(convs, x, upto):
    for conv in list(convs)[:upto]:
        x = conv(x)
    return x


@pytest.mark.parametrize('kind', ['retinanet', 'gfl', 'atss', 'fcos'])
@pytest.mark.parametrize('first', [0, 1, 2])
def test_tail_on_own_features_is_the_head(kind, first):
    torch.manual_seed(0)
    cfg = tiny_detector_cfg(kind)
    cfg.bbox_head.stacked_convs = 2
    head = build(cfg).bbox_head.eval()
    feats = [torch.randn(2, 32, s, s) for s in (8, 4, 2)]
    with torch.no_grad():
        expected = head(feats)
        cls = [_tower_outputs(head.cls_convs, f, first) for f in feats]
        reg = [_tower_outputs(head.reg_convs, f, first) for f in feats]
        got = head_tail_forward(head, first, cls, reg)
    assert len(got) == len(expected)
    for outs, refs in zip(got, expected):
        for out, ref in zip(outs, refs):
            torch.testing.assert_close(out, ref)
    # the head is as before
    assert len(head.cls_convs) == len(head.reg_convs) == 2


def test_gradient_reaches_the_given_features_not_a_frozen_head():
    torch.manual_seed(0)
    head = build(tiny_detector_cfg('retinanet')).bbox_head.eval()
    head.requires_grad_(False)
    cls = [torch.randn(1, 32, 4, 4, requires_grad=True)]
    reg = [torch.randn(1, 32, 4, 4, requires_grad=True)]
    out = head_tail_forward(head, 1, cls, reg)
    (out[0][0].sum() + out[1][0].sum()).backward()
    assert cls[0].grad.abs().sum() > 0 and reg[0].grad.abs().sum() > 0
    assert all(p.grad is None for p in head.parameters())


@pytest.mark.parametrize('depthwise', [False, True])
@pytest.mark.parametrize('first', [0, 1, 2])
def test_yolox_tail_on_its_own_features_is_the_head(first, depthwise):
    """YOLOX: one Sequential tower per level, run from layer ``first``
    without a ReLU (its layers end in Swish), then the class, box and
    objectness predictors of that level."""
    torch.manual_seed(0)
    cfg = tiny_detector_cfg('yolox')
    cfg.bbox_head.use_depthwise = depthwise
    head = build(cfg).bbox_head.eval()
    assert tower_names(head) == ('multi_level_cls_convs',
                                 'multi_level_reg_convs')
    assert per_level_towers(head) and tower_depth(head) == 2
    # spread the weights so that a missing or extra ReLU would show
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.3)
    feats = [torch.randn(2, head.in_channels, s, s) for s in (8, 4, 2)]
    with torch.no_grad():
        expected = head(feats)
        cls = [_tower_outputs(t, f, first)
               for t, f in zip(head.multi_level_cls_convs, feats)]
        reg = [_tower_outputs(t, f, first)
               for t, f in zip(head.multi_level_reg_convs, feats)]
        if first:
            assert min(float(c.min()) for c in cls) < 0  # Swish, no ReLU
        got = head_tail_forward(head, first, cls, reg)
    assert len(got) == len(expected) == 3
    for outs, refs in zip(got, expected):
        for out, ref in zip(outs, refs):
            torch.testing.assert_close(out, ref)
    assert all(isinstance(t, torch.nn.Sequential) and len(t) == 2
               for t in head.multi_level_cls_convs)


@pytest.mark.parametrize('name', ['RTMDetInsSepBNHead', 'RTMDetInsHead'])
def test_other_heads_are_refused_with_a_suggestion(name):
    from mmdet.models import dense_heads
    cls = getattr(dense_heads, name)
    with pytest.raises(TypeError, match=f'{name}.*PKD'):
        check_tower_head(cls.__new__(cls), 'teacher', 'CrossKD')


def test_tower_depth_of_shared_per_level_and_empty_towers():
    cfg = tiny_detector_cfg('retinanet')
    assert tower_depth(build(cfg).bbox_head) == 1
    cfg.bbox_head.stacked_convs = 0
    head = build(cfg).bbox_head
    assert not per_level_towers(head) and tower_depth(head) == 0
    rtmdet = build(tiny_detector_cfg('rtmdet')).bbox_head
    assert per_level_towers(rtmdet)
    assert tower_depth(rtmdet) == len(rtmdet.cls_convs[0]) == 2


@pytest.mark.parametrize('kind, act, relu', [
    ('retinanet', None, True), ('fcos', None, True),
    ('rtmdet', None, False), ('yolox', None, False),
    ('rtmdet', 'ReLU', True), ('yolox', 'ReLU', True)])
def test_given_features_get_a_relu_when_the_layers_end_in_one(kind, act,
                                                             relu):
    cfg = tiny_detector_cfg(kind)
    if act is not None:
        cfg.bbox_head.act_cfg = dict(type=act)
    assert activates_given_features(build(cfg).bbox_head) is relu
