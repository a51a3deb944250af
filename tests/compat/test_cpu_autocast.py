"""Tests for :mod:`sea_kd.compat.cpu_autocast`: mmcv's NMS and RoIAlign in
float32 under CPU bfloat16 autocast."""
import pytest
import torch

from sea_kd.compat import cpu_autocast_enabled, mmcv_ops_in_fp32
from sea_kd.models.capture import MethodTap
from tests.conftest import build, make_batch, tiny_detector_cfg


@pytest.fixture(scope='module')
def faster_rcnn():
    torch.manual_seed(0)
    return build(tiny_detector_cfg('faster_rcnn')).train()


def test_roi_extractor_runs_in_fp32_and_is_restored(faster_rcnn):
    extractor = faster_rcnn.roi_head.bbox_roi_extractor
    torch.manual_seed(1)
    feats = tuple(torch.randn(2, 32, s, s).bfloat16() for s in (16, 8, 4, 2))
    rois = torch.tensor([[0, 2., 3., 30., 40.], [1, 0., 0., 60., 60.]])
    expected = extractor(tuple(f.float() for f in feats), rois)
    with mmcv_ops_in_fp32(faster_rcnn) as count, \
            torch.autocast('cpu', dtype=torch.bfloat16):
        assert cpu_autocast_enabled()
        assert count == 2  # the RoI extractor and the RPN head
        out = extractor(feats, rois)
    assert out.dtype == torch.float32
    assert torch.equal(out, expected)
    assert 'forward' not in vars(extractor)
    assert 'predict_by_feat' not in vars(faster_rcnn.rpn_head)
    # outside autocast the original runs unchanged
    with mmcv_ops_in_fp32(faster_rcnn):
        assert torch.equal(extractor(tuple(f.float() for f in feats), rois),
                           expected)


def test_two_stage_training_step_under_bfloat16(faster_rcnn):
    inputs, samples = make_batch(faster_rcnn, shapes=[(3, 96, 96)] * 2)
    with mmcv_ops_in_fp32(faster_rcnn), \
            MethodTap(faster_rcnn.rpn_head, 'loss_and_predict') as rpn, \
            torch.autocast('cpu', dtype=torch.bfloat16):
        losses = faster_rcnn.loss(inputs, samples)
    # the proposals (boxes renamed `priors` by the R-CNN) went through NMS
    proposals = rpn.first.output[1]
    assert proposals[0].priors.dtype == torch.float32
    total, _ = faster_rcnn.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert faster_rcnn.backbone.conv1.weight.grad.abs().sum() > 0


def test_methods_shadowed_per_instance_are_left_alone(faster_rcnn):
    extractor = faster_rcnn.roi_head.bbox_roi_extractor
    with MethodTap(extractor, 'forward'):
        with mmcv_ops_in_fp32(faster_rcnn) as count:
            assert count == 1  # only the RPN head
        assert 'forward' in vars(extractor)  # the tap is still there
    assert 'forward' not in vars(extractor)
