"""CrossKD: its terms against a plain reference, the identity when the
student is the teacher, gradients to the student only, edge cases and
build errors."""
import copy

import pytest
import torch
from mmdet.models.losses import GIoULoss
from mmdet.registry import MODELS

from ...conftest import build, make_batch, tiny_detector_cfg
from .conftest import (align_by_channel, distiller_with, flat_rows,
                       recording_step)

CROSSKD = dict(type='CrossKD', reused_teacher_head_idx=1,
               adapter=dict(type='ConvAdapter'))


def _qfl(x, t, w, avg):
    p, q = x.sigmoid(), t.sigmoid()
    log_sig = torch.nn.functional.logsigmoid  # log p, safe for large |x|
    bce = -(q * log_sig(x) + (1 - q) * log_sig(-x))
    return (w[:, None] * bce * (p - q).abs()).sum() / avg


def test_retinanet_terms_match_a_plain_reference(pair):
    model = distiller_with(pair, CROSSKD)
    method = model.methods['crosskd']
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    s_head, t_head = model.student.bbox_head, model.teacher.bbox_head
    with torch.no_grad():
        s_feats = model.student.extract_feat(inputs)
        t_feats = model.teacher.extract_feat(inputs)
        x_cls, x_box, t_cls, t_box = [], [], [], []
        for s, t in zip(s_feats, t_feats):
            hs = [s_head.cls_convs[0](s), s_head.reg_convs[0](s)]
            ht = [t_head.cls_convs[0](t), t_head.reg_convs[0](t)]
            a = [align_by_channel(method.adapters[i](hs[i]), ht[i]).relu()
                 for i in range(2)]
            x_cls.append(t_head.retina_cls(a[0]))
            x_box.append(t_head.retina_reg(a[1]))
            t_cls.append(t_head.retina_cls(t_head.cls_convs[0](t)))
            t_box.append(t_head.retina_reg(t_head.reg_convs[0](t)))
        flat = [torch.cat([m.permute(0, 2, 3, 1).reshape(2, -1, d)
                           for m in maps], 1).reshape(-1, d)
                for maps, d in ((x_cls, 3), (t_cls, 3), (x_box, 4),
                                (t_box, 4))]
        # the student's targets, as its own head assigned them
        anchors, valid = s_head.get_anchors(
            [m.shape[-2:] for m in x_cls], [d.metainfo for d in samples],
            device='cpu')
        targets = s_head.get_targets(
            anchors, valid, [d.gt_instances for d in samples],
            [d.metainfo for d in samples])
        weights = torch.cat(targets[1], 1).reshape(-1)
        avg = max(float(targets[4]), 1.0)
        priors = torch.cat(t_head.prior_generator.grid_priors(
            [m.shape[-2:] for m in x_cls], device='cpu')).repeat(2, 1)
        omega = flat[1].max(1).values.sigmoid() * (weights > 0)
        reg = GIoULoss()(t_head.bbox_coder.decode(priors, flat[2]),
                         t_head.bbox_coder.decode(priors, flat[3]),
                         weight=omega, avg_factor=avg)
    assert losses['loss_crosskd_cls'].item() == pytest.approx(
        _qfl(flat[0], flat[1], weights, avg).item(), rel=1e-4)
    assert losses['loss_crosskd_reg'].item() == pytest.approx(
        reg.item(), rel=1e-4)


def _self_pair(kind, save_state):
    """A student that is a copy of its teacher (same config and weights)."""
    torch.manual_seed(0)
    cfg = tiny_detector_cfg(kind)
    cfg.bbox_head.stacked_convs = 2
    teacher = build(cfg)
    model = MODELS.build(dict(
        type='Distiller', student=cfg, teacher=copy.deepcopy(cfg),
        teacher_ckpt=save_state(teacher, 'teacher.pth'),
        student_ckpt=save_state(teacher, 'student.pth'),
        methods=[dict(type='CrossKD', reused_teacher_head_idx=1,
                      loss_centerness=dict(type='CrossEntropyLoss',
                                           use_sigmoid=True)
                      if kind == 'atss' else None)]))
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('kind', ['gfl', 'atss', 'fcos', 'rtmdet',
                                  'rtmdet_plain', 'yolox'])
def test_the_teacher_as_student_reproduces_the_teacher(kind, save_state):
    model = _self_pair(kind, save_state)
    inputs, samples = make_batch(model)
    record = _record_of(model, inputs, samples)
    cross = model.methods['crosskd'].cross_head_outputs(record)
    for got, want in zip(cross, (record.teacher_dense.cls_scores,
                                 record.teacher_dense.bbox_preds,
                                 *record.teacher_dense.extras)):
        for g, w in zip(got, want):
            assert torch.allclose(g, w, atol=1e-4, rtol=1e-4)
    if kind.startswith('rtmdet'):
        # a random RTMDet head's distances give degenerate boxes, whose
        # GIoU loss is 1 even between equal boxes: only the outputs above
        return
    losses = model.loss(inputs, samples)
    # QFL, KL and GIoU vanish at equality (YOLOX's exp-decoded boxes are
    # valid boxes); the centerness BCE (ATSS) is at its
    # minimum there, the teacher's entropy, so it is only checked finite
    for term in ('cls', 'reg'):
        name = f'loss_crosskd_{term}'
        assert losses[name].item() == pytest.approx(0.0, abs=2e-4), name
    if kind == 'atss':
        assert torch.isfinite(losses['loss_crosskd_centerness'])


def test_gradients_reach_the_student_towers_only(pair):
    model = distiller_with(pair, CROSSKD)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    (losses['loss_crosskd_cls'] + losses['loss_crosskd_reg']).backward()
    head = model.student.bbox_head
    assert head.cls_convs[0].conv.weight.grad.abs().sum() > 0
    assert head.reg_convs[0].conv.weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    # the cross-head predictions are the teacher's layers, not the student's
    assert head.retina_cls.weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())


def _trained_distiller(s_cfg, t_cfg, teacher, save_state):
    """A CrossKD distiller around ``teacher``'s weights, in training mode."""
    return distiller_with((s_cfg, t_cfg, save_state(teacher), None),
                          CROSSKD).train()


def test_rtmdet_runs_each_levels_tower_tail(save_state):
    """RTMDet's separate-BN head has one tower per level: the student's
    layer-0 output of every level goes through the teacher's layer 1 of
    that level and its predictors."""
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('rtmdet', base_channels=16, neck_channels=64)
    s_cfg = tiny_detector_cfg('rtmdet', base_channels=8, neck_channels=32)
    teacher = build(t_cfg)
    # a random RTMDet in eval mode is nearly constant (its BatchNorms'
    # running statistics are the initial ones, its head's weights have
    # std 0.01): spread the head and take the statistics of one batch
    with torch.no_grad():
        for p in teacher.bbox_head.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2)
        for m in teacher.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 1.0
        teacher.train()
        teacher(make_batch(teacher)[0], mode='tensor')
    model = _trained_distiller(s_cfg, t_cfg, teacher, save_state)
    method = model.methods['crosskd']
    assert method.student_taps == (
        'bbox_head.cls_convs.0.0', 'bbox_head.cls_convs.1.0',
        'bbox_head.cls_convs.2.0', 'bbox_head.reg_convs.0.0',
        'bbox_head.reg_convs.1.0', 'bbox_head.reg_convs.2.0')
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    (losses['loss_crosskd_cls'] + losses['loss_crosskd_reg']).backward()
    head = model.student.bbox_head
    assert torch.isfinite(losses['loss_crosskd_reg'])
    assert losses['loss_crosskd_reg'] >= 0  # GIoU of valid boxes
    # the conv is shared by the levels, its BatchNorm is each level's
    assert head.cls_convs[0][0].conv.weight.grad.abs().sum() > 0
    assert head.reg_convs[0][0].conv.weight.grad.abs().sum() > 0
    for level in range(3):
        assert head.cls_convs[level][0].bn.weight.grad is not None
        assert head.reg_convs[level][0].bn.weight.grad is not None
        assert head.cls_convs[level][1].bn.weight.grad is None
        assert head.rtm_cls[level].weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())
    # the cross-head outputs by hand: each level's aligned layer-0 output
    # (no ReLU after RTMDet's SiLU layers) through the teacher's tail
    with torch.no_grad():
        record_like = []
        s_feats = model.student.extract_feat(inputs)
        t_feats = model.teacher.extract_feat(inputs)
        t_head = model.teacher.bbox_head
        for level, (s, t) in enumerate(zip(s_feats, t_feats)):
            hs = head.cls_convs[level][0](s)
            ht = t_head.cls_convs[level][0](t)
            a = align_by_channel(method.adapters[0](hs), ht)
            record_like.append(t_head.rtm_cls[level](
                t_head.cls_convs[level][1](a)))
        record = _record_of(model, inputs, samples)
        cross = method.cross_head_outputs(record)
    for want, got in zip(record_like, cross[0]):
        assert want.std() > 0.1  # not the constant initial prior
        assert torch.allclose(want, got, atol=1e-4)
    # the box term by hand: distances (clamped at 0) around each point,
    # GIoU weighted by the teacher's top class probability
    sizes = [m.shape[-2:] for m in cross[1]]
    points = torch.cat(t_head.prior_generator.grid_priors(
        sizes, device='cpu')).repeat(2, 1)

    def boxes(maps):
        d = flat_rows(maps, 4).clamp(min=0)
        return torch.stack([points[:, 0] - d[:, 0], points[:, 1] - d[:, 1],
                            points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]],
                           1)

    weights = torch.cat(record.dense_targets.label_weights, 1).reshape(-1)
    omega = flat_rows(record.teacher_dense.cls_scores, 3).max(1).values \
        .sigmoid() * (weights > 0)
    avg = max(float(record.dense_targets.avg_factor), 1.0)
    want = GIoULoss()(boxes(cross[1]), boxes(record.teacher_dense.bbox_preds),
                      weight=omega, avg_factor=avg)
    got = method._reg_loss(record, cross[1], omega, avg)
    assert want.item() > 0
    assert got.item() == pytest.approx(want.item(), rel=1e-4)


def test_yolox_runs_each_levels_branch_tail(save_state):
    """YOLOX keeps one class and one box branch per level
    (``multi_level_cls_convs``): each level's student layer-0 output goes
    through the teacher's layer 1 of that level and its predictors; the
    class term compares detection scores (class × objectness) and the box
    term YOLOX's own decoded boxes."""
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('yolox', base_channels=16, neck_channels=64)
    s_cfg = tiny_detector_cfg('yolox', base_channels=8, neck_channels=32)
    teacher = build(t_cfg)
    with torch.no_grad():  # a head far from its initial constant prior
        for p in teacher.bbox_head.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.05)
    model = _trained_distiller(s_cfg, t_cfg, teacher, save_state)
    method = model.methods['crosskd']
    assert method.student_taps == tuple(
        f'bbox_head.multi_level_{tower}_convs.{level}.0'
        for tower in ('cls', 'reg') for level in range(3))
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    (losses['loss_crosskd_cls'] + losses['loss_crosskd_reg']).backward()
    head = model.student.bbox_head
    for level in range(3):
        assert head.multi_level_cls_convs[level][0].conv.weight.grad \
            .abs().sum() > 0
        assert head.multi_level_reg_convs[level][0].conv.weight.grad \
            .abs().sum() > 0
        assert head.multi_level_cls_convs[level][1].conv.weight.grad is None
        assert head.multi_level_conv_obj[level].weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())
    with torch.no_grad():
        record = _record_of(model, inputs, samples)
        cross = method.cross_head_outputs(record)
        s_feats = model.student.extract_feat(inputs)
        t_feats = model.teacher.extract_feat(inputs)
        t_head = model.teacher.bbox_head
        want = []  # (cls, box, objectness) per level, by hand
        for level, (s, t) in enumerate(zip(s_feats, t_feats)):
            tails = []
            for branch, name in enumerate(('cls', 'reg')):
                hs = getattr(head, f'multi_level_{name}_convs')[level][0](s)
                tower = getattr(t_head, f'multi_level_{name}_convs')[level]
                a = align_by_channel(method.adapters[branch](hs),
                                      tower[0](t))
                tails.append(tower[1](a))  # no ReLU: Swish layers
            want.append((t_head.multi_level_conv_cls[level](tails[0]),
                         t_head.multi_level_conv_reg[level](tails[1]),
                         t_head.multi_level_conv_obj[level](tails[1])))
    for level, outs in enumerate(want):
        for out, got in zip(outs, (cross[0][level], cross[1][level],
                                   cross[2][level])):
            assert torch.allclose(out, got, atol=1e-4)

    def score_logit(cls_maps, obj_maps):
        p = flat_rows(cls_maps, 3).double().sigmoid() * \
            flat_rows(obj_maps, 1).double().sigmoid()
        return (torch.log(p) - torch.log1p(-p)).float()

    # the class term by hand: QFL between detection-score logits, every
    # prior weighted 1, over the number of positives
    avg = max(float(record.dense_targets.avg_factor), 1.0)
    t_score = score_logit(record.teacher_dense.cls_scores,
                          record.teacher_dense.extras[0])
    x_score = score_logit(cross[0], cross[2])
    ones = torch.ones(t_score.shape[0])
    assert t_score.std() > 0.3 and t_score.max() < 13  # not clamped
    assert losses['loss_crosskd_cls'].item() == pytest.approx(
        _qfl(x_score, t_score, ones, avg).item(), rel=1e-4)
    # the box term by hand: centre offsets and log sizes in stride units
    sizes = [m.shape[-2:] for m in cross[1]]
    strides = torch.cat([torch.full((h * w, ), float(st))
                         for (h, w), st in zip(sizes, (8, 16, 32))])
    points = torch.cat([torch.stack(torch.meshgrid(
        torch.arange(w) * float(st), torch.arange(h) * float(st),
        indexing='xy'), -1).reshape(-1, 2)
        for (h, w), st in zip(sizes, (8, 16, 32))])
    points, strides = points.repeat(2, 1), strides.repeat(2)

    def boxes(maps):
        d = flat_rows(maps, 4)
        xy = points + d[:, :2] * strides[:, None]
        wh = d[:, 2:].exp() * strides[:, None]
        return torch.cat([xy - wh / 2, xy + wh / 2], 1)

    omega = t_score.max(1).values.sigmoid()
    want_reg = GIoULoss()(boxes(cross[1]),
                          boxes(record.teacher_dense.bbox_preds),
                          weight=omega, avg_factor=avg)
    assert want_reg.item() > 0
    assert losses['loss_crosskd_reg'].item() == pytest.approx(
        want_reg.item(), rel=1e-4)


def test_yolox_box_term_is_finite_for_huge_log_sizes(save_state):
    """YOLOX decodes sizes with exp: log sizes of 100 (e^100 overflows
    float32) still give a finite box term."""
    model = _self_pair('yolox', save_state)
    inputs, samples = make_batch(model)
    record = _record_of(model, inputs, samples)
    method = model.methods['crosskd']
    huge = [b.clone() for b in record.teacher_dense.bbox_preds]
    for b in huge:
        b[:, 2:] = 100.0
    weight = torch.ones(sum(b[0, 0].numel() for b in huge) * 2)
    loss = method._reg_loss(record, huge, weight, 1.0)
    assert torch.isfinite(loss) and loss > 0


def _record_of(model, inputs, samples):
    """The step's record, as the distiller hands it to the methods."""
    seen = {}
    method = model.methods['crosskd']
    original = type(method).forward

    def keep(self, record):
        seen['record'] = record
        return original(self, record)

    type(method).forward = keep
    try:
        model.loss(inputs, samples)
    finally:
        type(method).forward = original
    return seen['record']


@pytest.mark.parametrize('num_items', [[0, 0], [0, 3]])
def test_images_without_ground_truth(pair, num_items):
    model = distiller_with(pair, CROSSKD)
    inputs, samples = make_batch(model, num_items=num_items)
    losses = model.loss(inputs, samples)
    for term in ('cls', 'reg'):
        assert torch.isfinite(losses[f'loss_crosskd_{term}'])


def test_gfl_needs_its_distribution_term(save_state):
    model = _self_pair('gfl', save_state)
    method = model.methods['crosskd']
    assert method.distributions
    assert type(method.loss_reg).__name__ == 'DistributionKLLoss'


def test_build_errors(pair):
    with pytest.raises(ValueError, match="adapter=dict"):
        distiller_with(pair, dict(type='CrossKD', reused_teacher_head_idx=1))
    with pytest.raises(ValueError, match='at most 1'):
        distiller_with(pair, dict(CROSSKD, reused_teacher_head_idx=3))
    with pytest.raises(ValueError, match='no centerness'):
        distiller_with(pair, dict(CROSSKD, loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True)))


def _crosskd_step(kind, method_cfg, save_state, monkeypatch):
    """One step of a CrossKD distiller on a tiny ``kind`` pair: its losses,
    its record, the cross-head outputs and the teacher head."""
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg(kind, base_channels=16, neck_channels=64)
    model = distiller_with(
        (s_cfg, t_cfg, save_state(build(t_cfg), 'teacher.pth'), None),
        method_cfg)
    method = model.methods['crosskd']
    seen = recording_step(method, monkeypatch)
    losses = model.loss(*make_batch(model))
    record = seen['record']
    with torch.no_grad():
        cross = method.cross_head_outputs(record)
    return losses, record, cross, model.teacher.bbox_head


def _kl_rows(x, t):
    """KL(softmax(t) || softmax(x)) of each row, summed over the bins."""
    q = t.softmax(1)
    return (q * (q.log() - x.log_softmax(1))).sum(1)


def test_gfl_terms_match_a_plain_reference(save_state, monkeypatch):
    """GFL: QFL of the cross logits against the teacher's, and the box term
    of the CrossKD authors' GFL configs (jbwang1997/CrossKD@87e156a,
    ``configs/crosskd/crosskd_r50_gflv1_r101-2x-ms_fpn_1x_coco.py``, 43.7
    AP; ``mmdet/models/detectors/crosskd_gfl.py``): the KL of each edge's bin
    distribution summed over the bins, times 4 and /4 over the edges,
    weighted by ω (the teacher's top class probability at valid anchors)
    and averaged by Σω."""
    losses, record, cross, head = _crosskd_step('gfl', CROSSKD, save_state,
                                                monkeypatch)
    bins = head.reg_max + 1
    flat = flat_rows
    with torch.no_grad():
        x_cls, t_cls = flat(cross[0], 3), flat(
            record.teacher_dense.cls_scores, 3)
        x_box = flat(cross[1], 4 * bins).reshape(-1, bins)
        t_box = flat(record.teacher_dense.bbox_preds,
                     4 * bins).reshape(-1, bins)
        weights = torch.cat(record.dense_targets.label_weights,
                            1).reshape(-1)
        avg = max(float(record.dense_targets.avg_factor), 1.0)
        omega = t_cls.max(1).values.sigmoid() * (weights > 0)
        kl = _kl_rows(x_box, t_box).reshape(-1, 4)
        reg = 4 * (omega[:, None] * kl).sum() / 4 / omega.sum()
    assert losses['loss_crosskd_cls'].item() == pytest.approx(
        _qfl(x_cls, t_cls, weights, avg).item(), rel=1e-4)
    assert losses['loss_crosskd_reg'].item() == pytest.approx(
        reg.item(), rel=1e-4)
    assert reg.item() > 0


@pytest.mark.parametrize('kind', ['atss', 'fcos'])
def test_atss_and_fcos_terms_match_a_plain_reference(kind, save_state,
                                                     monkeypatch):
    """ATSS and FCOS: QFL of the cross logits, the GIoU of the decoded
    boxes weighted by ω (the teacher's top class probability at valid
    positions) over A, and (ATSS, as the authors' code) the centerness BCE
    at the positives over A."""
    method_cfg = dict(CROSSKD, loss_centerness=dict(
        type='CrossEntropyLoss', use_sigmoid=True)) if kind == 'atss' \
        else CROSSKD
    losses, record, cross, head = _crosskd_step(kind, method_cfg, save_state,
                                                monkeypatch)
    flat = flat_rows
    with torch.no_grad():
        x_cls, t_cls = flat(cross[0], 3), flat(
            record.teacher_dense.cls_scores, 3)
        x_box, t_box = flat(cross[1], 4), flat(
            record.teacher_dense.bbox_preds, 4)
        weights = torch.cat(record.dense_targets.label_weights,
                            1).reshape(-1)
        avg = max(float(record.dense_targets.avg_factor), 1.0)
        priors = torch.cat(head.prior_generator.grid_priors(
            [m.shape[-2:] for m in cross[0]], device='cpu')).repeat(2, 1)
        if kind == 'fcos':  # distances: never negative
            x_box, t_box = x_box.clamp(min=0), t_box.clamp(min=0)
        omega = t_cls.max(1).values.sigmoid() * (weights > 0)
        reg = GIoULoss()(head.bbox_coder.decode(priors, x_box),
                         head.bbox_coder.decode(priors, t_box),
                         weight=omega, avg_factor=avg)
    assert losses['loss_crosskd_cls'].item() == pytest.approx(
        _qfl(x_cls, t_cls, weights, avg).item(), rel=1e-4)
    assert losses['loss_crosskd_reg'].item() == pytest.approx(
        reg.item(), rel=1e-4)
    if kind == 'atss':
        labels = torch.cat(record.dense_targets.labels, 1).reshape(-1)
        pos = (labels >= 0) & (labels < 3)
        x_ctr, t_ctr = flat(cross[2], 1).reshape(-1), flat(
            record.teacher_dense.extras[0], 1).reshape(-1)
        q = t_ctr[pos].sigmoid()
        bce = -(q * torch.nn.functional.logsigmoid(x_ctr[pos]) +
                (1 - q) * torch.nn.functional.logsigmoid(-x_ctr[pos]))
        assert losses['loss_crosskd_centerness'].item() == pytest.approx(
            (bce.sum() / avg).item(), rel=1e-4)
