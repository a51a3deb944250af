"""The dense record is read the way each head's own ``loss_by_feat`` reads
its outputs and targets: the head's loss, recomputed from the record alone,
equals the loss the student's ``loss()`` returned."""
import pytest
import torch
from mmdet.structures.bbox import distance2bbox
from mmdet.utils import reduce_mean

from sea_kd.models.capture import student_loss_with_record
from sea_kd.models.detectors import normalize_dense_targets

from ...conftest import build, make_batch, tiny_detector_cfg


def _anchors(head, record):
    """The head's priors per level, (B, N_l, 4)."""
    cls = record.student_dense.cls_scores
    priors = head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls], device=cls[0].device)
    return [p.expand(cls[0].shape[0], -1, -1) for p in priors]


def _retinanet_loss(head, record):
    d, t = record.student_dense, record.dense_targets
    cls, box = [], []
    for lvl, anchors in enumerate(_anchors(head, record)):
        c, b = head.loss_by_feat_single(
            d.cls_scores[lvl], d.bbox_preds[lvl], anchors,
            t.labels[lvl], t.label_weights[lvl], t.bbox_targets[lvl],
            t.bbox_weights[lvl], avg_factor=t.avg_factor)
        cls.append(c)
        box.append(b)
    return dict(loss_cls=cls, loss_bbox=box)


def _gfl_loss(head, record):
    d, t = record.student_dense, record.dense_targets
    cls, box, dfl, weight = [], [], [], []
    for lvl, anchors in enumerate(_anchors(head, record)):
        c, b, f, w = head.loss_by_feat_single(
            anchors, d.cls_scores[lvl], d.bbox_preds[lvl], t.labels[lvl],
            t.label_weights[lvl], t.bbox_targets[lvl],
            head.prior_generator.strides[lvl], avg_factor=t.avg_factor)
        cls.append(c)
        box.append(b)
        dfl.append(f)
        weight.append(w)
    norm = reduce_mean(sum(weight)).clamp_(min=1).item()
    return dict(loss_cls=cls, loss_bbox=[b / norm for b in box],
                loss_dfl=[f / norm for f in dfl])


def _atss_loss(head, record):
    d, t = record.student_dense, record.dense_targets
    cls, box, ctr, weight = [], [], [], []
    for lvl, anchors in enumerate(_anchors(head, record)):
        c, b, n, w = head.loss_by_feat_single(
            anchors, d.cls_scores[lvl], d.bbox_preds[lvl], d.extras[0][lvl],
            t.labels[lvl], t.label_weights[lvl], t.bbox_targets[lvl],
            avg_factor=t.avg_factor)
        cls.append(c)
        box.append(b)
        ctr.append(n)
        weight.append(w)
    norm = reduce_mean(sum(weight)).clamp_(min=1).item()
    return dict(loss_cls=cls, loss_bbox=[b / norm for b in box],
                loss_centerness=ctr)


def _rtmdet_loss(head, record):
    """RTMDet's loss_by_feat from the record: boxes decoded from the raw
    distances, the metrics as soft targets, box weights and normaliser."""
    d, t = record.student_dense, record.dense_targets
    cls_scores = d.cls_scores
    batch = cls_scores[0].shape[0]
    points = head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls_scores], device=cls_scores[0].device,
        with_stride=True)
    cls, box, cls_norm, box_norm = [], [], [], []
    for lvl, pts in enumerate(points):
        dist = d.bbox_preds[lvl].permute(0, 2, 3, 1).reshape(batch, -1, 4)
        torch.testing.assert_close(t.bbox_weights[lvl][..., 0],
                                   t.quality[lvl])
        c, b, cn, bn = head.loss_by_feat_single(
            cls_scores[lvl], distance2bbox(pts, dist), t.labels[lvl],
            t.label_weights[lvl], t.bbox_targets[lvl], t.quality[lvl],
            head.prior_generator.strides[lvl])
        cls.append(c)
        box.append(b)
        cls_norm.append(cn)
        box_norm.append(bn)
    assert t.avg_factor == pytest.approx(
        max(float(sum(cls_norm)), 1.0), rel=1e-6)
    cls_norm = sum(cls_norm).clamp(min=1).item()
    box_norm = sum(box_norm).clamp(min=1).item()
    return dict(loss_cls=[c / cls_norm for c in cls],
                loss_bbox=[b / box_norm for b in box])


def _yolox_loss(head, record):
    """YOLOX's loss_by_feat from the record: class targets one_hot(label)
    times the IoU, objectness on the positives, boxes decoded by the
    head, all divided by the number of positives."""
    d, t = record.student_dense, record.dense_targets
    batch = d.cls_scores[0].shape[0]
    priors = torch.cat(head.prior_generator.grid_priors(
        [c.shape[-2:] for c in d.cls_scores], device=d.cls_scores[0].device,
        with_stride=True))

    def flat(maps, channels):
        return torch.cat([m.permute(0, 2, 3, 1).reshape(batch, -1, channels)
                          for m in maps], dim=1)

    cls = flat(d.cls_scores, head.num_classes)
    boxes = head._bbox_decode(priors, flat(d.bbox_preds, 4))
    objectness = flat(d.extras[0], 1)
    labels = torch.cat(t.labels, dim=1)
    positive = labels < head.num_classes
    quality = torch.cat(t.quality, dim=1)
    targets = torch.cat(t.bbox_targets, dim=1)
    cls_target = torch.nn.functional.one_hot(
        labels[positive], head.num_classes) * quality[positive, None]
    loss = dict(loss_obj=head.loss_obj(objectness.reshape(-1, 1),
                                       positive.float().reshape(-1, 1))
                / t.avg_factor)
    if positive.any():
        loss['loss_cls'] = head.loss_cls(cls[positive],
                                         cls_target) / t.avg_factor
        loss['loss_bbox'] = head.loss_bbox(boxes[positive],
                                           targets[positive]) / t.avg_factor
    else:
        loss['loss_cls'] = cls.sum() * 0
        loss['loss_bbox'] = boxes.sum() * 0
    return {k: [v] for k, v in loss.items()}


RECOMPUTE = dict(retinanet=_retinanet_loss, gfl=_gfl_loss, atss=_atss_loss,
                 rtmdet=_rtmdet_loss, rtmdet_plain=_rtmdet_loss,
                 rtmdet_ins=_rtmdet_loss, yolox=_yolox_loss)


@pytest.mark.parametrize('kind', sorted(RECOMPUTE))
@pytest.mark.parametrize('num_items', [[3, 2], [0, 2], [0, 0]])
def test_head_loss_recomputed_from_the_record(kind, num_items):
    torch.manual_seed(0)
    student = build(tiny_detector_cfg(kind))
    inputs, samples = make_batch(student, num_items=num_items,
                                 with_mask=kind == 'rtmdet_ins')
    losses, record = student_loss_with_record(student, inputs, samples,
                                              ('neck', 'dense_head'))
    again = RECOMPUTE[kind](student.bbox_head, record)
    assert set(again) == {k for k in losses if k in again}
    for name, values in again.items():
        own = losses[name]
        own = sum(own) if isinstance(own, (list, tuple)) else own
        torch.testing.assert_close(sum(values), own,
                                   rtol=1e-5, atol=1e-6, msg=name)


def test_gfl_targets_drop_the_anchors():
    """GFL's get_targets starts with the anchors, like ATSS's; the labels
    must not be read from them."""
    torch.manual_seed(0)
    student = build(tiny_detector_cfg('gfl'))
    inputs, samples = make_batch(student)
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('neck', 'dense_head'))
    t = record.dense_targets
    assert all(lab.dtype == torch.long for lab in t.labels)
    assert all(box.shape[-1] == 4 for box in t.bbox_targets)
    assert t.avg_factor > 0


def test_rtmdet_targets_are_boxes_with_metrics():
    """RTMDet regresses boxes: the targets are the assigned ground-truth
    boxes, and each positive's metric is in (0, 1]."""
    torch.manual_seed(0)
    student = build(tiny_detector_cfg('rtmdet'))
    inputs, samples = make_batch(student)
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('neck', 'dense_head'))
    t = record.dense_targets
    labels = torch.cat(t.labels, dim=1)
    boxes = torch.cat(t.bbox_targets, dim=1)
    quality = torch.cat(t.quality, dim=1)
    positive = labels < student.bbox_head.num_classes
    assert positive.any()
    for img, sample in enumerate(samples):
        gt = sample.gt_instances.bboxes
        pos_boxes = boxes[img][positive[img]]
        matches = (pos_boxes[:, None] == gt[None]).all(-1)
        assert matches.any(1).all()
    assert (quality[~positive] == 0).all()
    assert ((quality[positive] >= 0) & (quality[positive] <= 1)).all()
    assert record.student_dense.extras == ()


def test_an_unread_head_is_refused_with_a_reason():
    from mmdet.models.dense_heads import CenterNetHead
    head = CenterNetHead.__new__(CenterNetHead)
    with pytest.raises(NotImplementedError, match='CenterNetHead.*neck'):
        normalize_dense_targets(head, (), 2)
