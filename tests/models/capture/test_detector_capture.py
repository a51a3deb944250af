import pytest
import torch

from sea_kd.models.capture import (MethodTap, check_parts,
                                   student_loss_with_record,
                                   teacher_dense_forward, teacher_roi_forward)

from ...conftest import build, make_batch, tiny_detector_cfg

DENSE = ['retinanet', 'fcos']


def teacher_forward_into(teacher, inputs, record):
    """The teacher's side of a record, as Distiller.loss fills it."""
    feats, dense = teacher_dense_forward(teacher, inputs, record.parts)
    record.teacher_neck, record.teacher_dense = feats, dense
    if record.roi is not None:
        teacher_roi_forward(teacher, feats, record.roi)
TWO_STAGE = ['faster_rcnn', 'mask_rcnn']


def _pair(kind, seed=0):
    torch.manual_seed(seed)
    student = build(tiny_detector_cfg(kind, base_channels=8, neck_channels=32))
    teacher = build(tiny_detector_cfg(kind, base_channels=16,
                                      neck_channels=32)).eval()
    return student, teacher


@pytest.mark.parametrize('kind', DENSE)
def test_dense_record_matches_head_outputs_and_targets(kind):
    student, teacher = _pair(kind)
    inputs, samples = make_batch(student)
    with MethodTap(student.backbone, 'forward') as backbone_tap:
        losses, record = student_loss_with_record(student, inputs, samples,
                                                  ('neck', 'dense_head'))
    # the student ran once, its own losses came back
    assert len(backbone_tap.calls) == 1
    assert 'loss_cls' in losses and 'loss_bbox' in losses
    head = student.bbox_head
    num_priors = head.num_base_priors
    targets = record.dense_targets
    assert len(targets.labels) == len(record.student_dense.cls_scores) == 5
    for level, cls in enumerate(record.student_dense.cls_scores):
        b, _, h, w = cls.shape
        assert cls.shape[1] == num_priors * head.cls_out_channels
        assert targets.labels[level].shape == (b, h * w * num_priors)
        assert targets.label_weights[level].shape == (b, h * w * num_priors)
        assert targets.bbox_targets[level].shape[:2] == (b, h * w * num_priors)
        assert cls.requires_grad
    labels = torch.cat([lab.flatten() for lab in targets.labels])
    assert ((labels >= 0) & (labels <= head.num_classes)).all()
    assert (labels < head.num_classes).any(), 'expected some positives'
    # the record's targets are what the assigner gives when asked directly
    with torch.no_grad():
        feats = student.extract_feat(inputs)
    assert all(torch.allclose(a, b, atol=1e-5)
               for a, b in zip(feats, record.student_neck))

    teacher_forward_into(teacher, inputs, record)
    assert len(record.teacher_dense.cls_scores) == 5
    for s, t in zip(record.student_dense.cls_scores,
                    record.teacher_dense.cls_scores):
        assert s.shape == t.shape
        assert not t.requires_grad
    assert all(not f.requires_grad for f in record.teacher_neck)


@pytest.mark.parametrize('kind', DENSE)
def test_dense_tower_record_is_the_last_cls_conv_output(kind):
    student, _ = _pair(kind)
    inputs, samples = make_batch(student)
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('neck', 'dense_head', 'dense_tower'))
    tower = record.student_cls_tower
    assert len(tower) == len(record.student_neck) == 5
    head = student.bbox_head
    with torch.no_grad():
        for level, feat in enumerate(record.student_neck):
            x = feat
            for conv in head.cls_convs:
                x = conv(x)
            assert tower[level].shape == x.shape
            assert x.shape[1] == head.cls_convs[-1].out_channels
            assert torch.allclose(tower[level], x, atol=1e-5)
    assert all(t.requires_grad for t in tower)
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('neck', 'dense_head'))
    assert record.student_cls_tower is None


def test_retinanet_ignore_band_reaches_label_weights():
    student, _ = _pair('retinanet')
    inputs, samples = make_batch(student, num_items=[5, 5])
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('dense_head', ))
    weights = torch.cat(
        [w.flatten() for w in record.dense_targets.label_weights])
    # RetinaNet's assigner ignores anchors with IoU in [0.4, 0.5)
    assert (weights == 0).any() and (weights == 1).any()


@pytest.mark.parametrize('kind', TWO_STAGE)
def test_roi_record(kind):
    student, teacher = _pair(kind)
    inputs, samples = make_batch(student, with_mask=kind == 'mask_rcnn')
    losses, record = student_loss_with_record(student, inputs, samples,
                                              ('neck', 'roi'))
    assert 'loss_cls' in losses and 'loss_rpn_cls' in losses
    if kind == 'mask_rcnn':
        assert 'loss_mask' in losses
    roi = record.roi
    k = roi.rois.shape[0]
    assert k == sum(len(r.priors) for r in roi.sampling_results)
    assert roi.student_feats.shape[0] == roi.student_cls.shape[0] == k
    assert roi.labels.shape == (k, ) and roi.bbox_targets.shape[0] == k
    num_classes = student.roi_head.bbox_head.num_classes
    assert roi.student_cls.shape[1] == num_classes + 1
    teacher_forward_into(teacher, inputs, record)
    assert roi.teacher_cls.shape == roi.student_cls.shape
    assert roi.teacher_feats.shape[0] == k
    assert not roi.teacher_cls.requires_grad
    # the teacher's region outputs are its own bbox branch on the same RoIs
    with torch.no_grad():
        direct = teacher.roi_head._bbox_forward(
            teacher.extract_feat(inputs), roi.rois)
    assert torch.allclose(direct['cls_score'], roi.teacher_cls, atol=1e-5)


@pytest.mark.parametrize('kind', DENSE + TWO_STAGE)
def test_images_without_ground_truth(kind):
    student, teacher = _pair(kind)
    inputs, samples = make_batch(student, num_items=[0, 2],
                                 with_mask=kind == 'mask_rcnn')
    parts = ('neck', 'dense_head') if kind in DENSE else ('neck', 'roi')
    losses, record = student_loss_with_record(student, inputs, samples, parts)
    teacher_forward_into(teacher, inputs, record)
    for name, value in losses.items():
        values = value if isinstance(value, list) else [value]
        assert all(torch.isfinite(v).all() for v in values), name


def test_teacher_must_be_in_eval_mode():
    student, teacher = _pair('retinanet')
    inputs, samples = make_batch(student)
    _, record = student_loss_with_record(student, inputs, samples, ('neck', ))
    with pytest.raises(RuntimeError, match='eval mode'):
        teacher_forward_into(teacher.train(), inputs, record)


def test_check_parts_names_the_problem():
    retina, _ = _pair('retinanet')
    faster, _ = _pair('faster_rcnn')
    with pytest.raises(TypeError, match='not a two-stage detector'):
        check_parts(retina, ('roi', ), 'student')
    with pytest.raises(TypeError, match='not a one-stage detector'):
        check_parts(faster, ('dense_head', ), 'teacher')
    with pytest.raises(ValueError, match='classification tower'):
        check_parts(faster, ('dense_tower', ), 'student')
    with pytest.raises(ValueError, match='Unknown record parts'):
        check_parts(faster, ('logits', ), 'teacher')


@pytest.mark.parametrize('num_items', [[3, 2], [0, 2]])
def test_cascade_roi_record_is_the_first_stage(num_items):
    """Cascade R-CNN: the record holds the first stage's regions, outputs
    and targets; its stage-0 losses recomputed from the record equal the
    student's own, and the teacher's side is its first stage's head on
    the same regions."""
    student, teacher = _pair('cascade_rcnn')
    inputs, samples = make_batch(student, num_items=num_items)
    losses, record = student_loss_with_record(student, inputs, samples,
                                              ('neck', 'roi'))
    roi = record.roi
    head = student.roi_head.bbox_head[0]
    again = head.loss(roi.student_cls, roi.student_reg, roi.rois, roi.labels,
                      roi.label_weights, roi.bbox_targets, roi.bbox_weights)
    for name in ('loss_cls', 'loss_bbox'):
        torch.testing.assert_close(again[name], losses[f's0.{name}'])
    assert roi.student_repr.shape == (roi.rois.shape[0],
                                      head.shared_fcs[-1].out_features)
    teacher_forward_into(teacher, inputs, record)
    with torch.no_grad():
        direct = teacher.roi_head._bbox_forward(
            0, teacher.extract_feat(inputs), roi.rois)
    torch.testing.assert_close(direct['cls_score'], roi.teacher_cls,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(direct['bbox_feats'], roi.teacher_feats,
                               atol=1e-5, rtol=1e-5)
