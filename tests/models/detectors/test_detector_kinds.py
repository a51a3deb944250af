"""Detector kinds and query-head views, found by the class hierarchy."""
import pytest
from mmdet.models import dense_heads, detectors

from sea_kd.models.detectors import (DENSE, QUERY, TWO_STAGE, detector_kind,
                                     is_dense_detector, is_query_detector,
                                     is_two_stage_detector, query_head_view)
from sea_kd.models.detectors.query_head_view import (DDQDETRHeadView,
                                                     DINOHeadView,
                                                     QueryHeadView)


def _bare(cls):
    return cls.__new__(cls)


@pytest.mark.parametrize('name, kind', [
    ('RetinaNet', DENSE), ('FCOS', DENSE), ('GFL', DENSE), ('RTMDet', DENSE),
    ('YOLOX', DENSE), ('FasterRCNN', TWO_STAGE), ('MaskRCNN', TWO_STAGE),
    ('CascadeRCNN', TWO_STAGE), ('DETR', QUERY), ('DINO', QUERY),
    ('DeformableDETR', QUERY),
])
def test_detector_kind(name, kind):
    detector = _bare(getattr(detectors, name))
    assert detector_kind(detector) == kind
    assert [is_dense_detector(detector), is_two_stage_detector(detector),
            is_query_detector(detector)] == [kind == k for k in
                                             (DENSE, TWO_STAGE, QUERY)]


def test_no_kind_for_other_detectors():
    """Instance segmentors outside the three kinds (CondInst, SOLO) have
    none."""
    for name in ('CondInst', 'SOLO'):
        assert detector_kind(_bare(getattr(detectors, name))) is None


@pytest.mark.parametrize('name, view, denoising, separable', [
    ('DETRHead', QueryHeadView, False, True),
    ('DeformableDETRHead', QueryHeadView, False, True),
    ('ConditionalDETRHead', QueryHeadView, False, True),
    ('DINOHead', DINOHeadView, True, True),
    ('DDQDETRHead', DDQDETRHeadView, True, False),
])
def test_query_head_views(name, view, denoising, separable):
    found = query_head_view(_bare(getattr(dense_heads, name)))
    assert type(found) is view
    assert (found.denoising, found.separable) == (denoising, separable)


def test_dense_heads_have_no_query_view():
    assert query_head_view(_bare(dense_heads.RetinaHead)) is None
