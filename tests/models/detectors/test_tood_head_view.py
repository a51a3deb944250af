"""TOOD's view against TOOD's own loss and prediction: the family added by
its view file alone (docs/adding_a_detector_family.md)."""
import pytest
import torch
from mmdet.models.losses import GIoULoss
from mmengine.logging import MessageHub

from sea_kd.models.capture import student_loss_with_record
from sea_kd.models.detectors import DenseHeadOutputs, dense_head_view
from sea_kd.models.detectors.tood_head_view import TOODHeadView

from ...conftest import build, make_batch, tiny_detector_cfg


@pytest.fixture
def tood():
    torch.manual_seed(0)
    return build(tiny_detector_cfg('tood'))


def at_epoch(epoch):
    MessageHub.get_current_instance().update_info('epoch', epoch)


@pytest.mark.parametrize('epoch', [0, 10])
def test_the_record_recomputes_toods_own_losses(tood, epoch):
    """Both of TOOD's phases (ATSS assignment before ``initial_epoch``,
    task alignment after): its class and box losses from the record's
    targets, quality and predictions."""
    at_epoch(epoch)
    head = tood.bbox_head
    inputs, samples = make_batch(tood, num_items=[3, 2])
    losses, record = student_loss_with_record(tood, inputs, samples,
                                              ('dense_head', ))
    targets, dense = record.dense_targets, record.student_dense
    aligned = epoch >= head.initial_epoch
    loss_cls = head.loss_cls if aligned else head.initial_loss_cls
    total_cls, total_box, box_norm = 0.0, 0.0, 0.0
    for level, stride in enumerate(head.prior_generator.strides):
        c = head.cls_out_channels
        scores = dense.cls_scores[level].permute(0, 2, 3, 1).reshape(-1, c)
        boxes = dense.bbox_preds[level].permute(0, 2, 3, 1).reshape(-1, 4)
        labels = targets.labels[level].reshape(-1)
        quality = targets.quality[level].reshape(-1)
        weights = targets.label_weights[level].reshape(-1)
        cls_targets = (labels, quality) if aligned else labels
        total_cls = total_cls + loss_cls(scores, cls_targets, weights,
                                         avg_factor=1.0)
        pos = (labels >= 0) & (labels < head.num_classes)
        if pos.any():
            box_targets = targets.bbox_targets[level].reshape(-1, 4)[pos]
            anchors = head.prior_generator.single_level_grid_priors(
                dense.cls_scores[level].shape[-2:], level, device='cpu')
            box_weight = quality[pos] if aligned else \
                head.centerness_target(anchors.repeat(2, 1)[pos],
                                       box_targets)
            total_box = total_box + GIoULoss(loss_weight=2.0)(
                boxes[pos], box_targets / stride[0], weight=box_weight,
                avg_factor=1.0)
            box_norm = box_norm + box_weight.sum()
    # the metrics' sum (after ``initial_epoch``; before it, the number of
    # positives) normalises the class term, the box weights' sum the box
    # term (the same sum after ``initial_epoch``)
    torch.testing.assert_close(sum(losses['loss_cls']),
                               total_cls / targets.avg_factor)
    torch.testing.assert_close(sum(losses['loss_bbox']),
                               total_box / max(float(box_norm), 1.0))
    if aligned:
        torch.testing.assert_close(float(box_norm), targets.avg_factor)

def test_scores_and_boxes_in_pixels_as_tood_predicts(tood):
    tood.eval()
    head = tood.bbox_head
    feats = tood.extract_feat(torch.randn(2, 3, 64, 64))
    with torch.no_grad():
        cls_scores, bbox_preds = head(feats)
    view = dense_head_view(head)
    assert isinstance(view, TOODHeadView) and not view.has_towers
    logits = view.score_logits(DenseHeadOutputs(list(cls_scores),
                                                list(bbox_preds)))
    for lg, p in zip(logits, cls_scores):
        torch.testing.assert_close(lg.sigmoid(), p.clamp(1e-6, 1 - 1e-6))
    sizes = [p.shape[-2:] for p in bbox_preds]
    priors, strides, counts = view.priors_and_strides(sizes, 'cpu')
    boxes = view.decode(priors, view.predictions_in_pixels(bbox_preds),
                        strides)
    start = 0
    for level, stride in enumerate(head.prior_generator.strides):
        # TOOD's _predict_by_feat_single: bbox_pred * stride, no decoding
        expected = bbox_preds[level].permute(0, 2, 3, 1).reshape(
            2, -1, 4) * stride[0]
        torch.testing.assert_close(
            boxes[:, start:start + counts[level]], expected)
        start += counts[level]
    inverted = torch.tensor([[10., 12., 4., 20.]])
    assert view.decode_rows(priors[:1], inverted, strides[:1],
                            bounded=True).tolist() == [[4., 12., 10., 20.]]
