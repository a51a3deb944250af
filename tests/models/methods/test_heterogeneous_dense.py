"""Dense methods across detector families that predict for the same
positions: each side read through its own head's view."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.capture import (student_loss_with_record,
                                   teacher_dense_forward)
from sea_kd.models.detectors.pair_checks import check_same_dense_layout
from sea_kd.models.methods.tbd.harmony_score import dense_harmony_scores

from ...conftest import build, make_batch, tiny_detector_cfg
from .conftest import align_by_channel, recording_step


def pair(teacher_kind, student_kind):
    torch.manual_seed(0)
    teacher = build(tiny_detector_cfg(teacher_kind, base_channels=16,
                                      neck_channels=64)).eval()
    student = build(tiny_detector_cfg(student_kind, base_channels=8))
    return student, teacher


def records(student, teacher):
    torch.manual_seed(1)
    inputs, samples = make_batch(student, num_items=[3, 2])
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('dense_head', ))
    _, record.teacher_dense = teacher_dense_forward(teacher, inputs,
                                                    ('dense_head', ))
    return record


def test_one_prior_per_location_at_the_same_strides_is_one_layout():
    check_same_dense_layout(*pair('gfl', 'fcos'))
    check_same_dense_layout(*pair('rtmdet', 'yolox'))
    with pytest.raises(ValueError, match='priors_per_location'):
        check_same_dense_layout(*pair('gfl', 'retinanet'))
    with pytest.raises(ValueError, match='strides'):
        check_same_dense_layout(*pair('rtmdet', 'fcos'))


def test_adl_across_families_distils_each_heads_detection_score():
    """RTMDet → YOLOX: the YOLOX student's logits are those of class times
    objectness, the RTMDet teacher's its class logits."""
    student, teacher = pair('rtmdet', 'yolox')
    adl = MODELS.build(dict(type='ADL'))
    adl.bind(student, teacher)
    adl.setup()
    record = records(student, teacher)
    c = student.bbox_head.num_classes
    dense = record.student_dense
    s_rows = torch.cat([
        (cls.sigmoid().double() * obj.sigmoid().double()).permute(
            0, 2, 3, 1).reshape(cls.shape[0], -1, c)
        for cls, obj in zip(dense.cls_scores, dense.extras[0])], dim=1)
    s_logits = torch.logit(s_rows).reshape(-1, c).float()
    t_logits = torch.cat([
        cls.permute(0, 2, 3, 1).reshape(cls.shape[0], -1, c)
        for cls in record.teacher_dense.cls_scores], dim=1).reshape(-1, c)
    weights = torch.cat(record.dense_targets.label_weights, dim=1)
    expected = adl.loss_adl(s_logits, t_logits, weights.reshape(-1) > 0)
    got = adl(record)['cls']
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    raw = torch.cat([cls.permute(0, 2, 3, 1).reshape(cls.shape[0], -1, c)
                     for cls in dense.cls_scores], dim=1).reshape(-1, c)
    assert not torch.allclose(
        adl.loss_adl(raw, t_logits, weights.reshape(-1) > 0), got)
    got.backward()
    assert student.bbox_head.multi_level_conv_obj[0].weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def _iou(a, b):
    w = (min(a[2], b[2]) - max(a[0], b[0])).clamp(min=0)
    h = (min(a[3], b[3]) - max(a[1], b[1])).clamp(min=0)
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def test_harmony_across_families_decodes_each_head_from_its_own_priors():
    """GFL teacher → FCOS student, against a loop: the teacher's box from
    its anchor's centre and each edge's expected bin times the stride; the
    assigned box from the student's point and its FCOS distances."""
    student, teacher = pair('gfl', 'fcos')
    record = records(student, teacher)
    targets, t_dense = record.dense_targets, record.teacher_dense
    harmony = dense_harmony_scores(
        student.bbox_head, teacher.bbox_head, t_dense.cls_scores,
        t_dense.bbox_preds, targets.labels, targets.bbox_targets, kappa=0.5)
    s_head, t_head = student.bbox_head, teacher.bbox_head
    sizes = [tuple(c.shape[-2:]) for c in t_dense.cls_scores]
    anchors = t_head.prior_generator.grid_priors(sizes, device='cpu')
    points = s_head.prior_generator.grid_priors(sizes, device='cpu')
    bins = torch.arange(t_head.reg_max + 1, dtype=torch.float64)
    num_classes, checked = s_head.num_classes, 0
    for b in range(len(record.data_samples)):
        offset = 0
        for level, (height, width) in enumerate(sizes):
            stride = float(t_head.prior_generator.strides[level][0])
            labels = targets.labels[level][b]
            for i in range(height * width):
                label = int(labels[i])
                if not 0 <= label < num_classes:
                    assert harmony.scores[b, offset + i] == 0
                    continue
                y, x = divmod(i, width)
                score = t_dense.cls_scores[level][b, label, y, x].double()\
                    .sigmoid()
                logits = t_dense.bbox_preds[level][b, :, y, x].double()
                dist = logits.reshape(4, -1).softmax(-1) @ bins * stride
                ax1, ay1, ax2, ay2 = anchors[level][i].double()
                cx, cy = (ax1 + ax2) / 2, (ay1 + ay2) / 2
                t_box = torch.stack([cx - dist[0], cy - dist[1],
                                     cx + dist[2], cy + dist[3]])
                px, py = points[level][i].double()
                d = targets.bbox_targets[level][b, i].double()
                if getattr(s_head, 'norm_on_bbox', False):
                    d = d * stride
                g_box = torch.stack([px - d[0], py - d[1], px + d[2],
                                     py + d[3]])
                expected = score.sqrt() * _iou(t_box, g_box).sqrt()
                torch.testing.assert_close(
                    harmony.scores[b, offset + i].double(), expected,
                    rtol=1e-4, atol=1e-5)
                checked += 1
            offset += height * width
    assert checked > 0


def test_crosskd_runs_the_teacher_head_on_another_familys_student(
        save_state, monkeypatch):
    """GFL teacher, FCOS student: the FCOS student's tower outputs, adapted
    and aligned, through the GFL teacher's predictors."""
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('gfl', base_channels=16, neck_channels=64)
    s_cfg = tiny_detector_cfg('fcos', base_channels=8)
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg,
        teacher_ckpt=save_state(build(t_cfg), 'teacher.pth'),
        methods=[dict(type='CrossKD', reused_teacher_head_idx=1,
                      adapter=dict(type='ConvAdapter'))]))
    model.init_weights()
    method = model.methods['crosskd']
    seen = recording_step(method, monkeypatch)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    cross = method.cross_head_outputs(seen['record'])
    s_head, t_head = model.student.bbox_head, model.teacher.bbox_head
    with torch.no_grad():
        s_feats = model.student.extract_feat(inputs)
        # the teacher sees the batch normalised its own way (GFL's
        # preprocessing is not FCOS's)
        t_feats = model.teacher.extract_feat(
            model.teacher_inputs(inputs, samples))
        for level, (s, t) in enumerate(zip(s_feats, t_feats)):
            hs = [s_head.cls_convs[0](s), s_head.reg_convs[0](s)]
            ht = [t_head.cls_convs[0](t), t_head.reg_convs[0](t)]
            a = [align_by_channel(method.adapters[i](hs[i]), ht[i]).relu()
                 for i in range(2)]
            torch.testing.assert_close(cross[0][level], t_head.gfl_cls(a[0]),
                                       rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(
                cross[1][level], t_head.scales[level](t_head.gfl_reg(a[1])),
                rtol=1e-4, atol=1e-4)
    # the teacher predicts distributions: the box term is their KL
    assert method.distributions
    total = losses['loss_crosskd_cls'] + losses['loss_crosskd_reg']
    assert torch.isfinite(total)
    total.backward()
    assert s_head.cls_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
