"""Regions of a dense student for a two-stage teacher: decoded boxes of the
recorded outputs, the teacher's sampler, ground truth when the student
predicts nothing."""
import copy

import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from sea_kd.models.methods.gdetkd.region_sampling import (DEFAULT_PROPOSAL_CFG,
                                                          dense_head_proposals,
                                                          positive_regions,
                                                          regions_as_rois,
                                                          sample_regions)

from ....conftest import build, make_batch, tiny_detector_cfg


def rcnn_sampling(num=32):
    return (TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                  neg_iou_thr=0.5, min_pos_iou=0.5,
                                  match_low_quality=False)),
            TASK_UTILS.build(dict(type='RandomSampler', num=num,
                                  pos_fraction=0.25, neg_pos_ub=-1,
                                  add_gt_as_proposals=True)))


def test_no_predicted_boxes_leaves_the_ground_truth_as_regions():
    torch.manual_seed(0)
    model = build(tiny_detector_cfg('retinanet'))
    model.train()
    inputs, samples = make_batch(model, num_items=[3, 2])
    cls_scores, bbox_preds = model.bbox_head(model.extract_feat(inputs))
    # image 1: every score exactly 0 after the sigmoid -> no box passes
    cls_scores = [c.clone() for c in cls_scores]
    for c in cls_scores:
        c[1] = -1e4
    metas = [s.metainfo for s in samples]
    proposals = dense_head_proposals(model.bbox_head, cls_scores, bbox_preds,
                                     None, metas, DEFAULT_PROPOSAL_CFG)
    assert len(proposals[0]) > 0 and len(proposals[1]) == 0
    assert not proposals[0].bboxes.requires_grad
    results = sample_regions(proposals, samples, *rcnn_sampling())
    gt = samples[1].gt_instances.bboxes
    assert torch.equal(results[1].priors, gt)  # the GT boxes alone
    assert results[1].pos_is_gt.all() and len(results[1].pos_inds) == 2
    rois = regions_as_rois(results)
    assert rois.shape[1] == 5
    assert int((rois[:, 0] == 1).sum()) == 2
    assert int((rois[:, 0] == 0).sum()) == len(results[0].priors) <= 32


def test_no_boxes_and_no_ground_truth_give_no_region():
    empty_gt = InstanceData(bboxes=torch.zeros(0, 4),
                            labels=torch.zeros(0, dtype=torch.long))
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64)))
    sample.gt_instances = empty_gt
    results = sample_regions([InstanceData(bboxes=torch.zeros(0, 4))],
                             [sample], *rcnn_sampling())
    assert regions_as_rois(results).shape == (0, 5)


def test_sampler_caps_regions_and_positives():
    torch.manual_seed(1)
    model = build(tiny_detector_cfg('retinanet'))
    inputs, samples = make_batch(model, num_items=[4, 4])
    cls_scores, bbox_preds = model.bbox_head(model.extract_feat(inputs))
    proposals = dense_head_proposals(
        model.bbox_head, cls_scores, bbox_preds, None,
        [s.metainfo for s in samples],
        dict(DEFAULT_PROPOSAL_CFG, max_per_img=100))
    assert all(len(p) <= 100 for p in proposals)
    results = sample_regions(proposals, samples, *rcnn_sampling(num=16))
    for res in results:
        assert len(res.priors) <= 16
        assert len(res.pos_inds) <= 4  # 25 % of 16


def test_fcos_training_outputs_are_scaled_to_pixels():
    """FCOS (norm_on_bbox) regresses in stride units in training mode; the
    proposals equal those of the eval-mode outputs."""
    torch.manual_seed(2)
    cfg = tiny_detector_cfg('fcos', neck_channels=32)
    cfg.bbox_head.norm_on_bbox = True
    model = build(cfg)
    inputs, samples = make_batch(model)
    metas = [s.metainfo for s in samples]
    feats = model.extract_feat(inputs)
    model.bbox_head.train()
    cls_t, box_t, ctr_t = model.bbox_head(feats)
    train = dense_head_proposals(model.bbox_head, cls_t, box_t, ctr_t, metas)
    model.bbox_head.eval()
    cls_e, box_e, ctr_e = model.bbox_head(feats)
    expected = model.bbox_head.predict_by_feat(
        cls_e, box_e, ctr_e, batch_img_metas=metas,
        cfg=ConfigDict(copy.deepcopy(DEFAULT_PROPOSAL_CFG)), rescale=False,
        with_nms=True)
    for a, b in zip(train, expected):
        assert torch.allclose(a.bboxes, b.bboxes, atol=1e-4)
        assert torch.allclose(a.scores, b.scores)


def test_positive_regions_mark_each_images_leading_positives():
    model = build(tiny_detector_cfg('retinanet'))
    inputs, samples = make_batch(model, num_items=[3, 2])
    proposals = [InstanceData(bboxes=s.gt_instances.bboxes + 1.0)
                 for s in samples]
    results = sample_regions(proposals, samples, *rcnn_sampling(num=8))
    mask = positive_regions(results)
    expected = torch.cat([
        torch.arange(len(r.priors)) < len(r.pos_priors) for r in results
    ])
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    assert mask.shape[0] == regions_as_rois(results).shape[0]
    assert 0 < int(mask.sum()) < mask.shape[0]


@pytest.mark.parametrize('kind', ['gfl', 'tood', 'yolox'])
def test_proposals_are_the_heads_own_predictions(kind):
    """Through each family's view: GFL's distributions, TOOD's boxes (in
    stride units, scaled by its own prediction) and YOLOX's objectness
    reach ``predict_by_feat`` as the head's eval-mode outputs do."""
    torch.manual_seed(3)
    MessageHub.get_current_instance().update_info('epoch', 0)
    model = build(tiny_detector_cfg(kind))
    model.eval()
    inputs, samples = make_batch(model)
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        outputs = model.bbox_head(model.extract_feat(inputs))
    extras = outputs[2] if len(outputs) > 2 else None
    got = dense_head_proposals(model.bbox_head, outputs[0], outputs[1],
                               extras, metas)
    expected = model.bbox_head.predict_by_feat(
        *outputs, batch_img_metas=metas,
        cfg=ConfigDict(copy.deepcopy(DEFAULT_PROPOSAL_CFG)), rescale=False,
        with_nms=True)
    for a, b in zip(got, expected):
        assert len(a) > 0
        torch.testing.assert_close(a.bboxes, b.bboxes)
        torch.testing.assert_close(a.scores, b.scores)
    image = max(metas[0]['img_shape'])
    assert float(got[0].bboxes[:, 2:].sub(got[0].bboxes[:, :2]).median()) \
        < 4 * image
