"""LD: its terms against plain loops over positions, gradients to the
student only, edge cases and build errors."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

from ...conftest import build, make_batch, tiny_detector_cfg
from .conftest import recording_step


@pytest.fixture
def gfl_pair(save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('gfl', base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg('gfl', base_channels=16, neck_channels=64)
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, 'gfl_teacher.pth')


def ld_distiller(gfl_pair, **method):
    s_cfg, t_cfg, ckpt = gfl_pair
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt,
                              methods=[dict(type='LD', **method)]))
    model.init_weights()
    return model


def kl_row(s, t, T):
    p, q = F.log_softmax(s / T, -1), F.softmax(t / T, -1)
    return float((q * (q.log() - p)).mean()) * T * T


def test_main_and_kd_terms_match_loops(gfl_pair):
    model = ld_distiller(gfl_pair, loss_vlr=None)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    s_head = model.student.bbox_head
    with torch.no_grad():
        s_cls, s_box = s_head(model.student.extract_feat(inputs))
        t_cls, t_box = model.teacher.bbox_head(
            model.teacher.extract_feat(inputs))
        anchors, valid = s_head.get_anchors(
            [c.shape[-2:] for c in s_cls], [d.metainfo for d in samples],
            device='cpu')
        targets = s_head.get_targets(
            anchors, valid, [d.gt_instances for d in samples],
            [d.metainfo for d in samples])
    labels, label_weights = targets[1], targets[2]
    main = kd = 0.0
    for lvl in range(len(s_cls)):
        n_pos = int(((labels[lvl] >= 0) & (labels[lvl] < 3)).sum())
        width = s_cls[lvl].shape[-1]
        for b in range(2):
            for i in range(labels[lvl].shape[1]):
                if not 0 <= labels[lvl][b, i] < 3:
                    continue
                y, x = divmod(i, width)
                score = float(s_cls[lvl][b, :, y, x].sigmoid().max())
                for e in range(4):
                    sl = s_box[lvl][b, e * 17:(e + 1) * 17, y, x]
                    tl = t_box[lvl][b, e * 17:(e + 1) * 17, y, x]
                    main += 0.25 * score * kl_row(sl, tl, 10.0) / 4
                kd += 10 * float(label_weights[lvl][b, i]) * kl_row(
                    s_cls[lvl][b, :, y, x], t_cls[lvl][b, :, y, x],
                    2.0) / n_pos
    assert main > 0 and kd > 0
    assert losses['loss_ld_main'].item() == pytest.approx(main, rel=1e-4)
    assert losses['loss_ld_kd'].item() == pytest.approx(kd, rel=1e-4)


def test_vlr_term_reads_the_region(gfl_pair, monkeypatch):
    model = ld_distiller(gfl_pair, loss_main=None, loss_kd=None)
    method = model.methods['ld']
    inputs, samples = make_batch(model)
    seen = {}
    original = method._vlr

    def spy(record, maps):
        seen['vlr'] = original(record, maps)
        return seen['vlr']

    monkeypatch.setattr(method, '_vlr', spy)
    losses = model.loss(inputs, samples)
    assert (seen['vlr'] > 0).any()
    with torch.no_grad():
        s_box = model.student.bbox_head(
            model.student.extract_feat(inputs))[1]
        t_box = model.teacher.bbox_head(model.teacher.extract_feat(inputs))[1]
    flat = [torch.cat([m.permute(0, 2, 3, 1).reshape(2, -1, 68)
                       for m in maps], 1) for maps in (s_box, t_box)]
    ref = 0.0
    for b, i in (seen['vlr'] > 0).nonzero().tolist():
        for e in range(4):
            ref += 0.25 * float(seen['vlr'][b, i]) * kl_row(
                flat[0][b, i, e * 17:(e + 1) * 17],
                flat[1][b, i, e * 17:(e + 1) * 17], 10.0) / 16
    assert losses['loss_ld_vlr'].item() == pytest.approx(ref, rel=1e-4)


def test_gradients_reach_the_student_only(gfl_pair):
    model = ld_distiller(gfl_pair)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    sum(losses[f'loss_ld_{t}'] for t in ('main', 'vlr', 'kd')).backward()
    assert model.student.bbox_head.gfl_reg.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('num_items', [[0, 0], [0, 2]])
def test_images_without_ground_truth(gfl_pair, num_items):
    model = ld_distiller(gfl_pair)
    inputs, samples = make_batch(model, num_items=num_items)
    losses = model.loss(inputs, samples)
    for term in ('main', 'vlr', 'kd'):
        value = losses[f'loss_ld_{term}']
        assert torch.isfinite(value)
        if num_items == [0, 0]:
            assert value.item() == 0.0


def test_build_errors(gfl_pair, pair, save_state):
    s_cfg, t_cfg, ckpt = gfl_pair
    with pytest.raises(TypeError, match='GFL-type.*CrossKD'):
        MODELS.build(dict(type='Distiller', student=pair[0],
                          teacher=pair[1], teacher_ckpt=pair[2],
                          methods=[dict(type='LD')]))
    t_cfg = t_cfg.copy()
    t_cfg.bbox_head = dict(t_cfg.bbox_head, reg_max=8)
    torch.manual_seed(0)
    ckpt = save_state(build(t_cfg), 'teacher8.pth')
    with pytest.raises(ValueError, match='reg_max'):
        MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                          teacher_ckpt=ckpt, methods=[dict(type='LD')]))
    with pytest.raises(ValueError, match='no term'):
        ld_distiller(gfl_pair, loss_main=None, loss_vlr=None, loss_kd=None)


IM = dict(loss_im=dict(type='MaskedFeatureMSELoss', loss_weight=2.0),
          adapter=dict(type='ConvAdapter'))


def _source_fine_grained(anchors, gt_bboxes, ratio=0.5):
    """The source's ``get_im_region(mode='finegrained')`` for one image, as
    a loop over its boxes: anchors whose IoU with a box exceeds ``ratio``
    times that box's largest IoU."""
    flags = torch.zeros(len(anchors), dtype=torch.bool)
    for gt in gt_bboxes:
        x1 = torch.maximum(anchors[:, 0], gt[0])
        y1 = torch.maximum(anchors[:, 1], gt[1])
        x2 = torch.minimum(anchors[:, 2], gt[2])
        y2 = torch.minimum(anchors[:, 3], gt[3])
        inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
        area = (anchors[:, 2] - anchors[:, 0]) * \
            (anchors[:, 3] - anchors[:, 1])
        union = area + (gt[2] - gt[0]) * (gt[3] - gt[1]) - inter
        iou = inter / union
        flags |= iou > ratio * iou.max()
    return flags


def test_imitation_term_is_the_masked_mse_of_the_fine_grained_positions(
        gfl_pair, monkeypatch):
    model = ld_distiller(gfl_pair, loss_main=None, loss_vlr=None,
                         loss_kd=None, **IM)
    method = model.methods['ld']
    seen = recording_step(method, monkeypatch)
    inputs, samples = make_batch(model, num_items=[3, 1])
    losses = model.loss(inputs, samples)
    record = seen['record']
    maps = record.student_dense.bbox_preds
    masks = method.fine_grained_masks(record, maps)
    anchors = torch.cat(model.student.bbox_head.prior_generator.grid_priors(
        [m.shape[-2:] for m in maps], device='cpu'))
    for b, sample in enumerate(samples):
        want = _source_fine_grained(anchors, sample.gt_instances.bboxes)
        got = torch.cat([m[b].flatten() for m in masks])
        assert torch.equal(got, want) and got.any()
    with torch.no_grad():
        ref = 0.0
        for lvl, (s, t) in enumerate(zip(record.student_neck,
                                         record.teacher_neck)):
            s = method.adapters[lvl](s)
            for_rows = masks[lvl]
            if for_rows.any():
                ref += F.mse_loss(s.permute(0, 2, 3, 1)[for_rows],
                                  t.permute(0, 2, 3, 1)[for_rows]).item()
    assert losses['loss_ld_im'].item() == pytest.approx(2.0 * ref, rel=1e-4)
    losses['loss_ld_im'].backward()
    assert method.adapters[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_imitation_term_without_ground_truth_and_its_build_error(gfl_pair):
    model = ld_distiller(gfl_pair, **IM)
    inputs, samples = make_batch(model, num_items=[0, 0])
    assert model.loss(inputs, samples)['loss_ld_im'].item() == 0.0
    with pytest.raises(ValueError, match='ConvAdapter'):
        ld_distiller(gfl_pair, loss_im=IM['loss_im'])
    with pytest.raises(ValueError, match='im_ratio'):
        ld_distiller(gfl_pair, im_ratio=0.0)


def test_imitation_term_reads_half_precision_necks(gfl_pair, monkeypatch):
    """Under AMP the recorded necks are half precision; the term (and its
    float32 adapters) runs in float32 and gives the float32 value."""
    model = ld_distiller(gfl_pair, loss_main=None, loss_vlr=None,
                         loss_kd=None, **IM)
    method = model.methods['ld']
    seen = recording_step(method, monkeypatch)
    model.loss(*make_batch(model, num_items=[3, 1]))
    record = seen['record']
    maps = record.student_dense.bbox_preds
    with torch.no_grad():
        full = method._im(record, maps)
        record.student_neck = tuple(f.bfloat16() for f in record.student_neck)
        record.teacher_neck = tuple(f.bfloat16() for f in record.teacher_neck)
        half = method._im(record, maps)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=5e-2)
