"""BCKD: both terms against a plain loop written from the authors'
``NovelKDLoss`` and ``LDHead.loss_single`` (TinyTigerPan/BCKD@121c9aa),
the level gate, gradients to the student only, images without ground truth,
other families through their views, and build errors."""
import math

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors import DenseHeadOutputs

from ...conftest import build, make_batch, tiny_detector_cfg
from .conftest import recording_step


def gfl_pair(save_state, student_neck=32, teacher_neck=64):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('gfl', base_channels=8,
                              neck_channels=student_neck)
    t_cfg = tiny_detector_cfg('gfl', base_channels=16,
                              neck_channels=teacher_neck)
    return s_cfg, t_cfg, save_state(build(t_cfg), 'gfl_teacher.pth')


def bckd(pair, **options):
    s_cfg, t_cfg, ckpt = pair
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt,
                              methods=[dict(type='BCKD', **options)]))
    model.init_weights()
    return model.train()


def _rows(level_map, dim):
    """(B, dim, H, W) -> list over images of (H*W, dim) rows."""
    return [m.permute(1, 2, 0).reshape(-1, dim) for m in level_map.detach()]


def _giou(a, b):
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(ix2 - ix1, 0.0) * max(iy2 - iy1, 0.0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    union = area - inter + 1e-6
    ex1, ey1 = min(a[0], b[0]), min(a[1], b[1])
    ex2, ey2 = max(a[2], b[2]), max(a[3], b[3])
    enclose = (ex2 - ex1) * (ey2 - ey1) + 1e-6
    iou = inter / union
    return iou - (enclose - union) / enclose


def _gfl_box(anchor, stride, edge_logits):
    """The source's decoding, in stride units: the expectation of each
    edge's softmax over bins 0..reg_max, from the anchor's centre."""
    cx = (anchor[0] + anchor[2]) / 2 / stride
    cy = (anchor[1] + anchor[3]) / 2 / stride
    d = []
    for edge in edge_logits:
        z = [math.exp(v - max(edge)) for v in edge]
        d.append(sum(k * zk for k, zk in enumerate(z)) / sum(z))
    return [cx - d[0], cy - d[1], cx + d[2], cy + d[3]]


def reference(record, head, gate=True):
    """The two terms as the source computes them, level by level and
    position by position."""
    s_dense, t_dense = record.student_dense, record.teacher_dense
    targets = record.dense_targets
    bins = head.reg_max + 1
    num_classes = head.num_classes
    # num_total_samples: Σ over images of max(#positives, 1)
    images = targets.labels[0].shape[0]
    avg = float(sum(max(sum(int(((lab[img] >= 0) &
                                 (lab[img] < num_classes)).sum())
                            for lab in targets.labels), 1)
                    for img in range(images)))
    sizes = [m.shape[-2:] for m in s_dense.cls_scores]
    anchors = head.prior_generator.grid_priors(sizes, device='cpu')
    cls_total, loc_total = 0.0, 0.0
    for level, stride in enumerate(head.prior_generator.strides):
        labels = targets.labels[level]
        if gate and not ((labels >= 0) & (labels < num_classes)).any():
            continue  # `if len(pos_inds) > 0:` of loss_single
        s_cls = _rows(s_dense.cls_scores[level], num_classes)
        t_cls = _rows(t_dense.cls_scores[level], num_classes)
        s_box = _rows(s_dense.bbox_preds[level], 4 * bins)
        t_box = _rows(t_dense.bbox_preds[level], 4 * bins)
        for img in range(len(s_cls)):
            for i in range(s_cls[img].shape[0]):
                w = float(targets.label_weights[level][img, i])
                if w == 0:
                    continue
                gaps, row = [], 0.0
                for c in range(num_classes):
                    x = float(s_cls[img][i, c])
                    q = 1 / (1 + math.exp(-float(t_cls[img][i, c])))
                    p = 1 / (1 + math.exp(-x))
                    bce = max(x, 0) - x * q + math.log1p(math.exp(-abs(x)))
                    row += bce * abs(p - q)
                    gaps.append(abs(q - p))
                cls_total += w * row
                edges = [[float(v) for v in s_box[img][i, e * bins:
                                                      (e + 1) * bins]]
                         for e in range(4)]
                t_edges = [[float(v) for v in t_box[img][i, e * bins:
                                                        (e + 1) * bins]]
                           for e in range(4)]
                anchor = [float(v) for v in anchors[level][i]]
                b_s = _gfl_box(anchor, stride[0], edges)
                b_t = _gfl_box(anchor, stride[0], t_edges)
                loc_total += w * max(gaps) * (1 - _giou(b_s, b_t))
    return cls_total / avg, 4.0 * loc_total / avg


@pytest.mark.parametrize('gate', [True, False])
def test_gfl_terms_match_the_sources_loop(gate, save_state, monkeypatch):
    model = bckd(gfl_pair(save_state), positive_levels_only=gate)
    seen = recording_step(model.methods['bckd'], monkeypatch)
    # small boxes: the coarse levels get no positive, so the gate matters;
    # two image sizes: the padding's positions have label weight 0
    inputs, samples = make_batch(model, shapes=[(3, 96, 96), (3, 40, 40)],
                                 num_items=[3, 2])
    for sample in samples:
        boxes = sample.gt_instances.bboxes
        sample.gt_instances.bboxes = torch.cat(
            [boxes[:, :2], boxes[:, :2] + 8], dim=1)
    losses = model.loss(inputs, samples)
    record = seen['record']
    per_level = [bool(((lab >= 0) & (lab < 3)).any())
                 for lab in record.dense_targets.labels]
    assert any(per_level) and not all(per_level), per_level
    weights = torch.cat(record.dense_targets.label_weights, 1)
    assert bool((weights == 0).any()) and bool((weights > 0).any())
    cls, loc = reference(record, model.student.bbox_head, gate)
    assert losses['loss_bckd_cls'].item() == pytest.approx(cls, rel=1e-4)
    assert losses['loss_bckd_loc'].item() == pytest.approx(loc, rel=1e-4)
    assert loc > 0


def test_gradients_reach_the_student_only(save_state, monkeypatch):
    model = bckd(gfl_pair(save_state))
    method = model.methods['bckd']
    seen = recording_step(method, monkeypatch)
    inputs, samples = make_batch(model, num_items=[3, 2])
    losses = model.loss(inputs, samples)
    head = model.student.bbox_head
    # the teacher's outputs, were they to carry a graph, get no gradient
    record = seen['record']
    dense = record.teacher_dense
    leaves = [[m.detach().clone().requires_grad_() for m in maps]
              for maps in (dense.cls_scores, dense.bbox_preds)]
    record.teacher_dense = DenseHeadOutputs(*leaves, dense.extras)
    again = method.forward(record)
    sum(again.values()).backward(retain_graph=True)
    assert all(m.grad is None for maps in leaves for m in maps)
    model.zero_grad()
    losses['loss_bckd_loc'].backward(retain_graph=True)
    # the box term moves the student's distributions, not its scores
    assert head.gfl_reg.weight.grad.abs().sum() > 0
    assert head.gfl_cls.weight.grad is None
    model.zero_grad()
    losses['loss_bckd_cls'].backward()
    assert head.gfl_cls.weight.grad.abs().sum() > 0


def test_images_without_ground_truth(save_state):
    """No positive anywhere: the source's gate leaves both terms at zero
    (still in the graph); without the gate every position counts."""
    for gate in (True, False):
        model = bckd(gfl_pair(save_state), positive_levels_only=gate)
        inputs, samples = make_batch(model, num_items=[0, 0])
        losses = model.loss(inputs, samples)
        terms = [losses['loss_bckd_cls'], losses['loss_bckd_loc']]
        assert all(torch.isfinite(t) and t.requires_grad for t in terms)
        if gate:
            assert all(t.item() == 0 for t in terms)
        else:
            assert all(t.item() > 0 for t in terms)
        sum(terms).backward()


def test_a_student_equal_to_its_teacher_gets_no_term(save_state):
    """Student = teacher: the scores agree, so the modulating factor
    |p − q| and ω are 0 everywhere."""
    torch.manual_seed(0)
    cfg = tiny_detector_cfg('gfl', base_channels=8, neck_channels=32)
    teacher = build(cfg)
    ckpt = save_state(teacher, 'teacher.pth')
    model = MODELS.build(dict(type='Distiller', student=cfg, teacher=cfg,
                              teacher_ckpt=ckpt, student_ckpt=ckpt,
                              methods=[dict(type='BCKD')]))
    model.init_weights()
    # the student's batch norms as the teacher's (running statistics), so
    # that both give the same outputs
    model.student.eval()
    inputs, samples = make_batch(model, num_items=[3, 2])
    losses = model.loss(inputs, samples)
    assert losses['loss_bckd_loc'].item() == pytest.approx(0, abs=1e-6)
    assert losses['loss_bckd_cls'].item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize('kind', ['retinanet', 'fcos', 'atss', 'rtmdet',
                                  'yolox'])
def test_other_dense_families_train(kind, save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg(kind, base_channels=16, neck_channels=64)
    model = bckd((s_cfg, t_cfg, save_state(build(t_cfg), 't.pth')))
    inputs, samples = make_batch(model, num_items=[3, 2])
    losses = model.loss(inputs, samples)
    terms = {k: v for k, v in losses.items() if k.startswith('loss_bckd')}
    assert set(terms) == {'loss_bckd_cls', 'loss_bckd_loc'}
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.backbone.parameters())


def test_pairs_it_refuses(save_state):
    torch.manual_seed(0)
    faster = tiny_detector_cfg('faster_rcnn')
    retina = tiny_detector_cfg('retinanet')
    with pytest.raises(Exception, match='dense'):
        bckd((retina, faster, save_state(build(faster), 'f.pth')))
