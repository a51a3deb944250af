"""Dense-head views: found by the head's class hierarchy, one per family."""
import pytest
import torch
from mmdet.models import dense_heads

from sea_kd.models.detectors import (ClassHierarchyMap, DenseHeadView,
                                     dense_head_view, known_dense_heads,
                                     register_dense_view)
from sea_kd.models.detectors.anchor_head_view import (AnchorHeadView,
                                                      ATSSHeadView,
                                                      RetinaHeadView)
from sea_kd.models.detectors.fcos_head_view import FCOSHeadView
from sea_kd.models.detectors.gfl_head_view import GFLHeadView
from sea_kd.models.detectors.rtmdet_head_view import (RTMDetHeadView,
                                                      RTMDetInsHeadView)
from sea_kd.models.detectors.tood_head_view import TOODHeadView
from sea_kd.models.detectors.yolox_head_view import (YOLOX_MAX_LOG_SIZE,
                                                     YOLOXHeadView)

from ...conftest import build, tiny_detector_cfg


def _bare(head_class):
    """An instance without ``__init__``: the lookup reads only the type."""
    return head_class.__new__(head_class)


@pytest.mark.parametrize('head_class, view_class', [
    ('AnchorHead', AnchorHeadView),
    ('SSDHead', AnchorHeadView),          # an AnchorHead subclass
    ('RetinaHead', RetinaHeadView),
    ('ATSSHead', ATSSHeadView),
    ('VFNetHead', ATSSHeadView),          # ATSSHead first in its MRO
    ('GFLHead', GFLHeadView),
    ('LDHead', GFLHeadView),              # a GFLHead subclass
    ('FCOSHead', FCOSHeadView),
    ('RTMDetHead', RTMDetHeadView),
    ('RTMDetSepBNHead', RTMDetHeadView),
    ('RTMDetInsHead', RTMDetInsHeadView),
    ('RTMDetInsSepBNHead', RTMDetInsHeadView),
    ('YOLOXHead', YOLOXHeadView),
    ('TOODHead', TOODHeadView),
])
def test_view_found_by_class_hierarchy(head_class, view_class):
    head = _bare(getattr(dense_heads, head_class))
    view = dense_head_view(head)
    assert type(view) is view_class and view.head is head


@pytest.mark.parametrize('head_class', ['CenterNetHead', 'DETRHead',
                                        'CornerHead'])
def test_no_view_for_unknown_families(head_class):
    assert dense_head_view(_bare(getattr(dense_heads, head_class))) is None
    assert head_class not in known_dense_heads()


def test_family_answers():
    """What each family's view says about its head."""
    views = {name: dense_head_view(_bare(getattr(dense_heads, name)))
             for name in ('AnchorHead', 'RetinaHead', 'GFLHead', 'FCOSHead',
                          'RTMDetHead', 'RTMDetInsHead', 'YOLOXHead')}
    assert [n for n, v in views.items() if v.has_towers] == [
        'RetinaHead', 'GFLHead', 'FCOSHead', 'RTMDetHead', 'YOLOXHead']
    assert [n for n, v in views.items() if v.predicts_distributions] == [
        'GFLHead']
    assert views['YOLOXHead'].tower_attributes == (
        'multi_level_cls_convs', 'multi_level_reg_convs')
    assert views['RTMDetHead'].regresses_boxes
    assert views['YOLOXHead'].regresses_boxes
    assert views['GFLHead'].target_output_offset == 1


def test_second_view_for_a_head_class_refused():
    with pytest.raises(KeyError, match='RetinaHead already has the view'):
        register_dense_view(dense_heads.RetinaHead)(DenseHeadView)
    assert type(dense_head_view(_bare(dense_heads.RetinaHead))) is \
        RetinaHeadView


def test_bounded_codes_decode_to_proper_boxes():
    """Bounded decoding clamps distances at 0 (RTMDet: a negative distance
    would invert the box) and YOLOX's log sizes at YOLOX_MAX_LOG_SIZE (an
    exp overflow would make an infinite box); unbounded decoding does
    not."""
    torch.manual_seed(0)
    rtmdet = dense_head_view(build(tiny_detector_cfg('rtmdet')).bbox_head)
    priors = torch.tensor([[8.0, 8.0], [16.0, 8.0]])
    strides = torch.tensor([8.0, 8.0])
    codes = torch.tensor([[[-3.0, 1.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]]])
    free = rtmdet.decode(priors, codes, strides)
    bounded = rtmdet.decode(priors, codes, strides, bounded=True)
    assert free[0, 0, 0] == 11.0      # x1 = 8 + 3: right of x2 = 10
    assert bounded[0, 0].tolist() == [8.0, 7.0, 10.0, 9.0]
    assert torch.equal(free[0, 1], bounded[0, 1])

    yolox = dense_head_view(build(tiny_detector_cfg('yolox')).bbox_head)
    codes = torch.tensor([[[0.0, 0.0, 100.0, 0.0]]])
    free = yolox.decode(priors[:1], codes, strides[:1])
    bounded = yolox.decode(priors[:1], codes, strides[:1], bounded=True)
    assert not torch.isfinite(free).all()
    half = 8.0 * torch.exp(torch.tensor(YOLOX_MAX_LOG_SIZE)) / 2
    assert torch.allclose(bounded[0, 0], torch.stack(
        [8.0 - half, torch.tensor(4.0), 8.0 + half, torch.tensor(12.0)]))

    retina = dense_head_view(build(tiny_detector_cfg('retinanet')).bbox_head)
    deltas = torch.randn(7, 4) * 5
    assert torch.equal(retina.bound_codes(deltas), deltas)


def test_masked_decode_is_the_rows_of_the_full_decode():
    torch.manual_seed(0)
    view = dense_head_view(build(tiny_detector_cfg('retinanet')).bbox_head)
    sizes = [(4, 4), (2, 2), (1, 1), (1, 1), (1, 1)]
    priors, strides, counts = view.priors_and_strides(sizes,
                                                      torch.device('cpu'))
    anchors = view.head.num_base_priors
    assert counts == [h * w * anchors for h, w in sizes]
    assert priors.shape == (sum(counts), 4)
    assert strides.tolist() == sum(([8.0 * 2**level] * count for level, count
                                    in enumerate(counts)), [])
    codes = torch.randn(2, priors.shape[0], 4) * 0.1
    mask = torch.rand(2, priors.shape[0]) > 0.5
    full = view.decode(priors, codes, strides)
    assert torch.equal(view.decode(priors, codes, strides, mask), full[mask])
    assert view.decode(priors, codes, strides,
                       torch.zeros_like(mask)).shape == (0, 4)


def test_class_hierarchy_map_nearest_class_wins():
    values = ClassHierarchyMap('value')
    values.add(dense_heads.AnchorHead, 'anchor')
    values.add(dense_heads.ATSSHead, 'atss')
    assert values.lookup(_bare(dense_heads.GFLHead)) == 'anchor'
    assert values.lookup(_bare(dense_heads.VFNetHead)) == 'atss'
    assert values.lookup(_bare(dense_heads.FCOSHead)) is None
    assert values.names() == ['ATSSHead', 'AnchorHead']
    with pytest.raises(KeyError, match='ATSSHead already has the value'):
        values.add(dense_heads.ATSSHead, 'other')


def test_head_without_view_refused_naming_the_known_heads():
    from sea_kd.models.detectors import checked_dense_view
    with pytest.raises(NotImplementedError) as error:
        checked_dense_view(_bare(dense_heads.CenterNetHead), 'teacher')
    message = str(error.value)
    assert "reads the teacher's dense-head targets" in message
    assert 'CenterNetHead' in message and 'YOLOXHead' in message and \
        'GFLHead' in message


def test_gfl_boxes_are_formed_as_gfl_predicts_them():
    """The view's pixel boxes of GFL's distributions against the head's own
    prediction path (``_predict_by_feat_single``: Integral, stride,
    anchor centres, its coder), level by level."""
    torch.manual_seed(0)
    head = build(tiny_detector_cfg('gfl')).bbox_head.eval()
    feats = [torch.randn(2, head.in_channels, s, s) for s in (8, 4, 2, 1, 1)]
    with torch.no_grad():
        _, bbox_preds = head(feats)
    view = dense_head_view(head)
    sizes = [p.shape[-2:] for p in bbox_preds]
    priors, strides, counts = view.priors_and_strides(sizes, 'cpu')
    boxes = view.decode(priors, view.predictions_in_pixels(bbox_preds),
                        strides)
    assert boxes.shape == (2, sum(counts), 4)
    anchors = head.prior_generator.grid_priors(sizes, device='cpu')
    start = 0
    for level, (pred, stride) in enumerate(
            zip(bbox_preds, head.prior_generator.strides)):
        for b in range(2):
            rows = pred[b].permute(1, 2, 0).reshape(
                -1, 4 * (head.reg_max + 1))
            distances = head.integral(rows) * stride[0]
            expected = head.bbox_coder.decode(
                head.anchor_center(anchors[level]), distances)
            torch.testing.assert_close(
                boxes[b, start:start + counts[level]], expected)
        start += counts[level]
    assert view.regresses_boxes and view.box_code_size == 4
