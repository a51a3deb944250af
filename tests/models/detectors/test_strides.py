"""Stride helpers of the detector views."""
from types import SimpleNamespace

from sea_kd.models.detectors.strides import level_strides, prior_strides_of


def _head(strides):
    return SimpleNamespace(prior_generator=SimpleNamespace(strides=strides))


def test_level_strides_takes_the_horizontal_stride_of_each_level():
    assert level_strides(_head([8, (16, 32), [64, 64]])) == [8.0, 16.0, 64.0]


def test_prior_strides_of_prefers_the_dense_head_then_the_rpn():
    one_stage = SimpleNamespace(bbox_head=_head([(8, 8), 16]))
    two_stage = SimpleNamespace(rpn_head=_head([4]),
                                roi_head=SimpleNamespace())
    both = SimpleNamespace(bbox_head=_head([8]), rpn_head=_head([4]))
    assert prior_strides_of(one_stage) == [(8.0, 8.0), (16.0, 16.0)]
    assert prior_strides_of(two_stage) == [(4.0, 4.0)]
    assert prior_strides_of(both) == [(8.0, 8.0)]
    assert prior_strides_of(SimpleNamespace(bbox_head=object())) is None
