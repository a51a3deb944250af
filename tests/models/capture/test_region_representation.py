"""The R-CNN region representation in the record: the bbox head's last
shared FC output, recorded from the student's own loss and computed for the
teacher on the same regions."""
import torch

from sea_kd.models.capture import (MethodTap, student_loss_with_record,
                                   teacher_region_forward, teacher_roi_forward)

from ...conftest import build, make_batch, tiny_detector_cfg


def shared_fc_output(head, roi_feats):
    """The shared FC layers of a ConvFCBBoxHead run by hand."""
    x = roi_feats.flatten(1)
    for fc in head.shared_fcs:
        x = torch.relu(fc(x))
    return x


def pair(seed=0, **student_head):
    torch.manual_seed(seed)
    s_cfg = tiny_detector_cfg('faster_rcnn', base_channels=8,
                              neck_channels=32)
    s_cfg.roi_head.bbox_head.update(student_head)
    student = build(s_cfg)
    teacher = build(tiny_detector_cfg('faster_rcnn', base_channels=16,
                                      neck_channels=32)).eval()
    return student, teacher


def test_student_and_teacher_representations():
    student, teacher = pair()
    inputs, samples = make_batch(student)
    with MethodTap(student.backbone, 'forward') as backbone_tap:
        _, record = student_loss_with_record(student, inputs, samples,
                                             ('neck', 'roi'))
    assert len(backbone_tap.calls) == 1  # recorded, not recomputed
    roi = record.roi
    head = student.roi_head.bbox_head
    assert roi.student_repr.shape == (roi.rois.shape[0], 32)
    assert roi.student_repr.requires_grad
    assert torch.allclose(roi.student_repr,
                          shared_fc_output(head, roi.student_feats),
                          atol=1e-6)
    assert (roi.student_repr >= 0).all()
    # the representation is on the path of the student's own R-CNN outputs
    assert torch.allclose(head.fc_cls(roi.student_repr), roi.student_cls,
                          atol=1e-6)

    with torch.no_grad():
        feats = teacher.extract_feat(inputs)
    teacher_roi_forward(teacher, feats, roi)
    t_head = teacher.roi_head.bbox_head
    assert not roi.teacher_repr.requires_grad
    assert torch.allclose(roi.teacher_repr,
                          shared_fc_output(t_head, roi.teacher_feats),
                          atol=1e-6)
    # the taps are gone afterwards
    assert 'forward' not in vars(head.shared_fcs[-1])
    assert 'forward' not in vars(t_head.shared_fcs[-1])


def test_teacher_region_forward_on_given_regions():
    _, teacher = pair()
    inputs, _ = make_batch(teacher)
    rois = torch.tensor([[0., 4., 4., 40., 30.], [1., 10., 2., 60., 60.]])
    with torch.no_grad():
        feats = teacher.extract_feat(inputs)
        direct = teacher.roi_head._bbox_forward(feats, rois)
    layers = list(teacher.roi_head.bbox_roi_extractor.roi_layers)
    out = teacher_region_forward(teacher, feats, rois)
    # on the CPU the RoIAlign is SparseRoIAlign: equal up to rounding
    for key in ('bbox_feats', 'cls_score', 'bbox_pred'):
        torch.testing.assert_close(out[key], direct[key], atol=1e-5,
                                   rtol=1e-5)
    # and the teacher's own RoI layers are back afterwards
    assert list(teacher.roi_head.bbox_roi_extractor.roi_layers) == layers
    assert out['repr'].shape == (2, 32)
    empty = teacher_region_forward(teacher, feats, torch.zeros(0, 5))
    assert empty['repr'].shape == (0, 32)


def test_head_without_shared_fcs_has_no_representation():
    student, _ = pair(type='ConvFCBBoxHead', num_shared_fcs=0,
                      num_cls_fcs=1, num_reg_fcs=1)
    inputs, samples = make_batch(student)
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('neck', 'roi'))
    assert record.roi.student_repr is None
