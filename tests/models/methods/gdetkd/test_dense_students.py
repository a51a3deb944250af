"""G-DetKD's dense pipeline with RTMDet students: reversed boxes of an
early student are not proposals, both region representations train, and a
student whose detections need a mask branch (RTMDet-Ins) is refused at
build with the reason."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict

from sea_kd.models.detectors import DenseHeadOutputs, checked_dense_view
from sea_kd.models.methods.gdetkd import GDetKD
from sea_kd.models.methods.gdetkd.region_sampling import (DEFAULT_PROPOSAL_CFG,
                                                          dense_head_proposals)

from ....conftest import build, make_batch, tiny_detector_cfg
from ...distillers.test_gdetkd_distiller import (distill_terms, gdetkd,
                                                 grad_sum, teacher_ckpt)

__all__ = ['teacher_ckpt']  # the module fixture, shared


def rtmdet_cfg(kind='rtmdet'):
    cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
    # the Faster R-CNN teacher's strides need it (the build says so)
    cfg.data_preprocessor.pad_size_divisor = 32
    return cfg


def test_reversed_boxes_of_an_early_rtmdet_student_are_not_proposals():
    """RTMDet regresses edge distances without a positive activation; with
    negative distances its own prediction path gives reversed boxes. The
    proposals drop them before NMS: none is left and none takes a place of
    the budget."""
    torch.manual_seed(0)
    head = build(rtmdet_cfg()).bbox_head
    sizes = [(8, 8), (4, 4), (2, 2)]
    cls_scores = [torch.randn(1, head.cls_out_channels, h, w)
                  for h, w in sizes]
    # left and top distances positive, right and bottom very negative
    bbox_preds = [torch.cat([torch.rand(1, 2, h, w),
                             -torch.full((1, 2, h, w), 50.)], dim=1)
                  for h, w in sizes]
    bbox_preds[0][..., :5, :5] = torch.rand(1, 4, 5, 5) * 4  # 25 proper
    metas = [dict(img_shape=(64, 64), scale_factor=(1., 1.))]
    cfg = dict(copy.deepcopy(DEFAULT_PROPOSAL_CFG), max_per_img=20,
               nms=dict(type='nms', iou_threshold=1.0))
    plain = {k: v for k, v in cfg.items() if k != 'min_bbox_size'}
    raw = checked_dense_view(head, 'student').predict(
        DenseHeadOutputs(cls_scores, bbox_preds, ()), metas,
        ConfigDict(plain))[0].bboxes
    assert bool(((raw[:, 2] < raw[:, 0]) | (raw[:, 3] < raw[:, 1])).any())
    for given in (cfg, plain):  # the default, and a config without it
        (proposals, ) = dense_head_proposals(head, cls_scores, bbox_preds,
                                             None, metas, given)
        boxes = proposals.bboxes
        assert len(boxes) == 20  # the budget, all of it proper boxes
        assert bool(((boxes[:, 2] > boxes[:, 0]) &
                     (boxes[:, 3] > boxes[:, 1])).all())


@pytest.mark.parametrize('repr_options', [
    dict(),
    dict(dense_region_repr='head_tower',
         region_projector=dict(type='RegionProjector', pooled_size=1))],
    ids=['fused_roi', 'head_tower'])
def test_rtmdet_students_train_with_either_region_repr(repr_options,
                                                      teacher_ckpt):
    """``head_tower`` reads RTMDet's separate-BN towers (one per level)."""
    torch.manual_seed(0)
    model = gdetkd(rtmdet_cfg(), teacher_ckpt, **repr_options)
    inputs, samples = make_batch(model, num_items=[3, 2])
    terms = distill_terms(model.loss(inputs, samples))
    assert set(terms) == {'loss_gdetkd_sgfi', 'loss_gdetkd_ckd'}
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert grad_sum(model.student.backbone.parameters()) > 0


def test_an_rtmdet_ins_student_is_refused_at_build(teacher_ckpt):
    reason = 'needs a student whose detections are boxes alone'
    student = build(rtmdet_cfg('rtmdet_ins'))
    teacher = build(teacher_ckpt[0])
    assert GDetKD.pair_refusal(student, teacher) == reason
    assert GDetKD.pair_refusal(build(rtmdet_cfg()), teacher) is None
    with pytest.raises(TypeError, match=r'RTMDetInsSepBNHead makes them '
                       r'with its mask branch.*\n?.*Methods that distil'):
        gdetkd(rtmdet_cfg('rtmdet_ins'), teacher_ckpt)
