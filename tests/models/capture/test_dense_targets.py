"""The dense record is read the way each head's own ``loss_by_feat`` reads
its outputs and targets: the head's loss, recomputed from the record alone,
equals the loss the student's ``loss()`` returned."""
import pytest
import torch
from mmdet.utils import reduce_mean

from sea_kd.models.capture import student_loss_with_record
from sea_kd.models.capture.dense_targets import normalize_dense_targets

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


RECOMPUTE = dict(retinanet=_retinanet_loss, gfl=_gfl_loss, atss=_atss_loss)


@pytest.mark.parametrize('kind', sorted(RECOMPUTE))
@pytest.mark.parametrize('num_items', [[3, 2], [0, 2]])
def test_head_loss_recomputed_from_the_record(kind, num_items):
    torch.manual_seed(0)
    student = build(tiny_detector_cfg(kind))
    inputs, samples = make_batch(student, num_items=num_items)
    losses, record = student_loss_with_record(student, inputs, samples,
                                              ('neck', 'dense_head'))
    again = RECOMPUTE[kind](student.bbox_head, record)
    assert set(again) == {k for k in losses if k in again}
    for name, values in again.items():
        torch.testing.assert_close(sum(values), sum(losses[name]),
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


def test_rtmdet_targets_are_refused_with_a_reason():
    from mmdet.models.dense_heads import RTMDetHead
    head = RTMDetHead.__new__(RTMDetHead)
    with pytest.raises(NotImplementedError, match='RTMDet.*neck'):
        normalize_dense_targets(head, (), 2)
