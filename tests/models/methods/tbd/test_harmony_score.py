"""The harmony score against hand-computed cases: RetinaNet anchors with the
delta coder, ATSS with decoded-box targets, FCOS distances with and without
``norm_on_bbox`` in both head modes."""
import copy
import math
from typing import Optional, Sequence, Tuple

import pytest
import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn

from sea_kd.models.capture import normalize_dense_targets
from sea_kd.models.detectors import checked_dense_view
from sea_kd.models.methods.tbd.harmony_score import (_check_count,
                                                     _targets_to_boxes,
                                                     dense_harmony_scores,
                                                     harmony_score)

from ....conftest import build, tiny_detector_cfg

SIZES = [(2, 2), (1, 1), (1, 1), (1, 1), (1, 1)]


def decode_dense_predictions(head: nn.Module,
                             bbox_preds: Sequence[Tensor],
                             mask: Optional[Tensor] = None) -> Tensor:
    """(Test helper, through the head's view.) Boxes ``(x1, y1, x2, y2)``
    from a dense head's raw regressions.

    Args:
        head: The head that produced ``bbox_preds`` (its prior generator,
            box coder, and for FCOS ``norm_on_bbox`` and training mode).
        bbox_preds: Per level (B, A*D, H, W), the head's own encoding.
        mask: Optional (B, N) bool selecting positions.

    Returns:
        Tensor: (B, N, 4) boxes in input-image pixels, or (P, 4) where
        ``mask`` is true. Boxes are not clipped to the image.
    """
    view = checked_dense_view(head, 'student')
    sizes = [tuple(p.shape[-2:]) for p in bbox_preds]
    priors, strides, _ = view.priors_and_strides(sizes, bbox_preds[0].device)
    codes = view.predictions_in_pixels(bbox_preds)
    _check_count('The box predictions', codes.shape[1], priors)
    return view.decode(priors, codes, strides, mask)


def decode_dense_targets(head: nn.Module, bbox_targets: Sequence[Tensor],
                         featmap_sizes: Sequence[Tuple[int, int]],
                         mask: Optional[Tensor] = None) -> Tensor:
    """(Test helper, through the head's view.) The assigned ground-truth
    boxes from a head's regression targets.

    Anchor heads with ``reg_decoded_bbox=True`` (ATSS) and RTMDet heads
    hold the boxes already; otherwise the targets are decoded by the head's
    view (deltas against anchors, or FCOS distances to points, scaled back
    by the stride when ``norm_on_bbox=True``). Only positives carry meaningful
    boxes.

    Args:
        head: The head whose assigner built the targets.
        bbox_targets: Per level (B, N_l, D), ``DenseTargets.bbox_targets``.
        featmap_sizes: (H_l, W_l) per level.
        mask: Optional (B, N) bool selecting positions.

    Returns:
        Tensor: (B, N, 4) boxes, or (P, 4) where ``mask`` is true.
    """
    view = checked_dense_view(head, 'student')
    priors, strides, _ = view.priors_and_strides(featmap_sizes,
                                                 bbox_targets[0].device)
    return _targets_to_boxes(view, priors, strides, bbox_targets, mask)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def iou(a, b):
    """Plain IoU of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def empty_dense(batch, anchors, classes, fill=-10.0):
    """Per-level teacher outputs and student targets, all background."""
    cls = [torch.full((batch, anchors * classes, h, w), fill)
           for h, w in SIZES]
    box = [torch.zeros(batch, anchors * 4, h, w) for h, w in SIZES]
    labels = [torch.full((batch, h * w * anchors), classes, dtype=torch.long)
              for h, w in SIZES]
    targets = [torch.zeros(batch, h * w * anchors, 4) for h, w in SIZES]
    return cls, box, labels, targets


@pytest.fixture(scope='module')
def heads():
    torch.manual_seed(0)
    return {kind: build(tiny_detector_cfg(kind)).bbox_head
            for kind in ('retinanet', 'fcos', 'atss')}


def test_formula_and_kappa_limits():
    s = torch.tensor([0.81, 0.25, 0.0, 1.0])
    u = torch.tensor([0.49, 1.0, 0.7, 0.0])
    assert torch.allclose(harmony_score(s, u),
                          torch.tensor([0.9 * 0.7, 0.5, 0.0, 0.0]))
    assert torch.allclose(harmony_score(s, u, kappa=1.0), s)
    assert torch.allclose(harmony_score(s, u, kappa=0.0), u)
    assert harmony_score(torch.tensor([0.5]), torch.tensor([0.25]),
                         kappa=0.25).item() == pytest.approx(
                             0.5**0.25 * 0.25**0.75)
    with pytest.raises(ValueError, match='kappa'):
        harmony_score(s, u, kappa=1.5)
    with pytest.raises(ValueError, match='same shape'):
        harmony_score(s, u[:2])
    assert harmony_score(s.half(), u.half()).dtype == torch.float32


def test_agreement_form_by_hand():
    s = torch.tensor([0.81, 0.25, 0.0, 1.0, 0.05])
    u = torch.tensor([0.49, 1.0, 0.7, 0.0, 0.05])
    agreement = harmony_score(s, u, form='agreement')
    # 1 − |s − u|: high when the two agree, even when both are low
    assert torch.allclose(agreement,
                          torch.tensor([0.68, 0.25, 0.3, 0.0, 1.0]))
    # symmetric, κ-free, in [0, 1] even for inputs out of range (clamped)
    assert torch.equal(agreement, harmony_score(u, s, form='agreement'))
    assert torch.equal(agreement,
                       harmony_score(s, u, kappa=0.9, form='agreement'))
    assert harmony_score(torch.tensor([1.5]), torch.tensor([-0.2]),
                         form='agreement').item() == 0.0
    with pytest.raises(ValueError, match='form must be one of'):
        harmony_score(s, u, form='sum')


def test_retinanet_deltas_hand_case(heads):
    """GT = the anchor itself (zero target deltas); the teacher shifts it by
    half its width (IoU 1/3) or doubles its width (IoU 1/2). RetinaNet's
    delta coder has unit stds, so the raw deltas are the shifts."""
    head = heads['retinanet']
    cls, box, labels, targets = empty_dense(2, 9, 3)
    # image 0, level 0, (h=1, w=0), anchor 4, class 1: index (1*2+0)*9+4
    cls[0][0, 4 * 3 + 1, 1, 0] = 2.0
    box[0][0, 4 * 4 + 0, 1, 0] = 0.5  # dx
    labels[0][0, 22] = 1
    # image 1, level 1, anchor 0, class 0
    cls[1][1, 0, 0, 0] = 0.0
    box[1][1, 2, 0, 0] = math.log(2.0)  # dw
    labels[1][1, 0] = 0
    result = dense_harmony_scores(head, head, cls, box, labels, targets)

    assert result.positive.sum() == 2
    n0 = 36
    expected = {(0, 22): (sigmoid(2.0), 1 / 3), (1, n0): (0.5, 0.5)}
    for (b, i), (s, u) in expected.items():
        assert result.positive[b, i]
        assert result.teacher_scores[b, i].item() == pytest.approx(s)
        assert result.ious[b, i].item() == pytest.approx(u, rel=1e-5)
        assert result.scores[b, i].item() == pytest.approx(
            math.sqrt(s * u), rel=1e-5)
    assert result.scores.count_nonzero() == 2
    assert [t.shape[1] for t in result.split(result.scores)] == \
        [36, 9, 9, 9, 9]


def test_atss_decoded_box_targets_hand_case(heads):
    """ATSS keeps GT boxes as targets (reg_decoded_bbox=True). Anchor at
    level 0, (h=1, w=1): 64x64 centred on (8, 8) = (-24, -24, 40, 40).
    dx = 5 with std 0.1 shifts it by 32 px: (8, -24, 72, 40)."""
    head = heads['atss']
    assert head.reg_decoded_bbox
    cls, box, labels, targets = empty_dense(1, 1, 3)
    cls[0][0, 0, 1, 1] = 1.0
    box[0][0, 0, 1, 1] = 5.0
    labels[0][0, 3] = 0
    targets[0][0, 3] = torch.tensor([0.0, 0.0, 40.0, 40.0])
    result = dense_harmony_scores(head, head, cls, box, labels, targets,
                                  kappa=0.25)
    u = iou([8, -24, 72, 40], [0, 0, 40, 40])
    assert u == pytest.approx(1280 / 4416)
    assert result.ious[0, 3].item() == pytest.approx(u, rel=1e-5)
    assert result.scores[0, 3].item() == pytest.approx(
        sigmoid(1.0)**0.25 * u**0.75, rel=1e-5)
    assert result.positive.sum() == 1


@pytest.mark.parametrize('student_norm', [True, False])
@pytest.mark.parametrize('teacher_norm,teacher_training', [
    (True, False), (True, True), (False, False), (False, True)])
def test_fcos_distances_and_norm_on_bbox(heads, student_norm, teacher_norm,
                                         teacher_training):
    """Point (4, 4) of level 0 (stride 8, offset 0.5). GT (0, 0, 12, 12):
    distances (4, 4, 8, 8), divided by 8 in the student's targets when its
    head has norm_on_bbox. The teacher predicts (4, 4, 2, 2) px = box
    (0, 0, 6, 6), IoU 36/144; FCOSHead multiplies by the stride only in eval
    mode, so in training mode with norm_on_bbox its raw output is /8."""
    student = copy.deepcopy(heads['fcos'])
    teacher = copy.deepcopy(heads['fcos'])
    student.norm_on_bbox = student_norm
    teacher.norm_on_bbox = teacher_norm
    teacher.train(teacher_training)
    cls, box, labels, targets = empty_dense(1, 1, 3)
    cls[0][0, 2, 0, 0] = -1.0
    pixels = torch.tensor([4.0, 4.0, 2.0, 2.0])
    box[0][0, :, 0, 0] = pixels / 8 if teacher_norm and teacher_training \
        else pixels
    labels[0][0, 0] = 2
    gt = torch.tensor([4.0, 4.0, 8.0, 8.0])
    targets[0][0, 0] = gt / 8 if student_norm else gt
    result = dense_harmony_scores(student, teacher, cls, box, labels,
                                  targets)
    assert result.ious[0, 0].item() == pytest.approx(0.25, rel=1e-5)
    assert result.scores[0, 0].item() == pytest.approx(
        math.sqrt(sigmoid(-1.0) * 0.25), rel=1e-5)
    assert result.positive.sum() == 1


def test_fcos_real_head_boxes_equal_in_both_modes():
    """A real FCOS head with norm_on_bbox: its eval-mode outputs (x stride)
    and training-mode outputs decode to the same boxes, and targets built
    with and without norm_on_bbox decode to the assigned GT boxes."""
    cfg = tiny_detector_cfg('fcos')
    cfg.bbox_head.update(norm_on_bbox=True, center_sampling=True)
    torch.manual_seed(0)
    head = build(cfg).bbox_head
    feats = [torch.randn(2, 32, s, s) for s in (8, 4, 2, 1, 1)]
    head.eval()
    eval_boxes = decode_dense_predictions(head, head(feats)[1])
    head.train()
    train_preds = head(feats)[1]
    train_boxes = decode_dense_predictions(head, train_preds)
    assert torch.allclose(eval_boxes, train_boxes, atol=1e-4)
    # the decoded box is the point minus / plus the pixel distances
    point = torch.tensor([4.0 + 8, 4.0])  # level 0, h=0, w=1
    dist = train_preds[0][0, :, 0, 1] * 8
    expected = torch.cat([point - dist[:2], point + dist[2:]])
    assert torch.allclose(eval_boxes[0, 1], expected, atol=1e-4)

    sizes = [f.shape[-2:] for f in feats]
    points = head.prior_generator.grid_priors(sizes, device='cpu')
    gts = [InstanceData(bboxes=torch.tensor([[2.0, 3.0, 40.0, 30.0]]),
                        labels=torch.tensor([1])),
           InstanceData(bboxes=torch.tensor([[20.0, 10.0, 60.0, 62.0],
                                             [0.0, 0.0, 12.0, 9.0]]),
                        labels=torch.tensor([0, 2]))]
    decoded = []
    for norm in (True, False):
        head.norm_on_bbox = norm
        targets = normalize_dense_targets(head, head.get_targets(points, gts),
                                          2)
        labels = torch.cat(targets.labels, 1)
        positive = labels < 3
        assert positive.any()
        boxes = decode_dense_targets(head, targets.bbox_targets, sizes,
                                     positive)
        assigned = torch.stack([
            gts[b].bboxes[(gts[b].labels == labels[b, i]).nonzero()[0, 0]]
            for b, i in positive.nonzero().tolist()])
        assert torch.allclose(boxes, assigned, atol=1e-4)
        decoded.append(boxes)
    assert torch.allclose(decoded[0], decoded[1], atol=1e-4)


def test_matches_per_positive_loop_on_real_targets(heads):
    """Vectorised result = a loop over positives decoding one box at a time,
    with targets from RetinaNet's own assigner."""
    head = heads['retinanet']
    torch.manual_seed(1)
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    cls = [torch.randn(2, 27, h, w) for h, w in sizes]
    box = [torch.randn(2, 36, h, w) * 0.2 for h, w in sizes]
    metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2
    anchors, valid = head.get_anchors(sizes, metas, device='cpu')
    gts = [InstanceData(bboxes=torch.tensor([[4.0, 6.0, 40.0, 30.0],
                                             [30.0, 30.0, 62.0, 60.0]]),
                        labels=torch.tensor([0, 2])),
           InstanceData(bboxes=torch.tensor([[10.0, 10.0, 50.0, 56.0]]),
                        labels=torch.tensor([1]))]
    targets = normalize_dense_targets(
        head, head.get_targets(anchors, valid, gts, metas), 2)
    result = dense_harmony_scores(head, head, cls, box, targets.labels,
                                  targets.bbox_targets)
    labels = torch.cat(targets.labels, 1)
    priors = torch.cat(head.prior_generator.grid_priors(sizes, device='cpu'))
    deltas = torch.cat([b.permute(0, 2, 3, 1).reshape(2, -1, 4) for b in box],
                       1)
    logits = torch.cat([c.permute(0, 2, 3, 1).reshape(2, -1, 3) for c in cls],
                       1)
    positives = (labels < 3).nonzero().tolist()
    assert len(positives) >= 3
    for b, i in positives:
        t_box = head.bbox_coder.decode(priors[i:i + 1], deltas[b, i:i + 1])
        s = sigmoid(logits[b, i, labels[b, i]].item())
        # the labels of one image differ, so the label names the GT box
        gt = gts[b].bboxes[gts[b].labels == labels[b, i]][0]
        u = iou(t_box[0].tolist(), gt.tolist())
        assert result.ious[b, i].item() == pytest.approx(u, rel=1e-4)
        assert result.scores[b, i].item() == pytest.approx(
            math.sqrt(s * u), rel=1e-4)
    assert (result.scores[labels >= 3] == 0).all()


def test_no_positives_gives_zeros(heads):
    head = heads['retinanet']
    cls, box, labels, targets = empty_dense(2, 9, 3)
    result = dense_harmony_scores(head, head, cls, box, labels, targets)
    assert not result.positive.any()
    assert (result.scores == 0).all() and result.scores.shape == (2, 72)


def test_layout_mismatch_is_named(heads):
    head = heads['retinanet']
    cls, box, labels, targets = empty_dense(1, 9, 3)
    labels[0] = labels[0][:, :5]
    with pytest.raises(ValueError, match='share the dense layout'):
        dense_harmony_scores(head, head, cls, box, labels, targets)


def test_yolox_boxes_by_hand():
    """YOLOX has no box coder: its (dx, dy, log w, log h) outputs in stride
    units decode around each point, as YOLOX's own prediction does."""
    torch.manual_seed(0)
    head = build(tiny_detector_cfg('yolox')).bbox_head
    feats = [torch.randn(2, 32, s, s) for s in (4, 2, 1)]
    preds = head(feats)[1]
    boxes = decode_dense_predictions(head, preds)
    assert boxes.shape == (2, 16 + 4 + 1, 4)
    # level 1 (stride 16), h=1, w=0: the point (0, 16)
    d = preds[1][1, :, 1, 0]
    cx, cy = 0 + d[0].item() * 16, 16 + d[1].item() * 16
    w, h = math.exp(d[2].item()) * 16, math.exp(d[3].item()) * 16
    expected = torch.tensor([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    assert torch.allclose(boxes[1, 16 + 2], expected, atol=1e-4)
    # and the same as YOLOX's own decoding in its prediction
    priors = torch.cat(head.prior_generator.grid_priors(
        [f.shape[-2:] for f in feats], device='cpu', with_stride=True))
    flat = torch.cat([p.permute(0, 2, 3, 1).reshape(2, -1, 4)
                      for p in preds], 1)
    assert torch.allclose(boxes, head._bbox_decode(priors, flat), atol=1e-5)


def test_yolox_detection_scores_combine_objectness():
    """YOLOX scores a detection by σ(c)·σ(o): TBD reads that score's logit,
    other heads' class logits as they are."""
    from sea_kd.models.capture import DenseHeadOutputs
    from sea_kd.models.detectors import detection_score_logits
    torch.manual_seed(0)
    head = build(tiny_detector_cfg('yolox')).bbox_head
    cls = [torch.randn(2, 3, 4, 4, requires_grad=True) * 4]
    obj = [torch.randn(2, 1, 4, 4, requires_grad=True) * 4]
    dense = DenseHeadOutputs(cls, [torch.zeros(2, 4, 4, 4)], (obj, ))
    logits = detection_score_logits(head, dense)
    assert torch.allclose(logits[0].sigmoid(),
                          cls[0].sigmoid() * obj[0].sigmoid(), atol=1e-6)
    logits[0].sum().backward()
    retina = build(tiny_detector_cfg('retinanet')).bbox_head
    assert detection_score_logits(retina, dense)[0] is cls[0]
