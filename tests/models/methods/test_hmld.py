"""HMLD on DETR-family pairs: the recorded queries, the pairs it matches,
its terms, gradients to the student only, and build errors."""
import copy

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.capture import (DistillRecord, QueryOutputs,
                                   student_loss_with_record,
                                   teacher_query_forward)
from sea_kd.models.methods.hmld.hmld import clip_to_image

from ...conftest import build, make_batch, tiny_detector_cfg


def distiller(student_cfg, teacher_cfg, ckpt, **method):
    model = MODELS.build(dict(type='Distiller', student=student_cfg,
                              teacher=teacher_cfg, teacher_ckpt=ckpt,
                              methods=[dict(type='HMLD', **method)]))
    model.init_weights()
    return model


@pytest.fixture
def dino_pair(save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('dino', base_channels=16)
    s_cfg = tiny_detector_cfg('dino', base_channels=8)
    return s_cfg, t_cfg, save_state(build(t_cfg), 'dino_teacher.pth')


@pytest.mark.parametrize('kind', ['dino', 'deformable_detr', 'detr'])
def test_a_step_trains_the_student_only(kind, save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg(kind, base_channels=16)
    s_cfg = tiny_detector_cfg(kind, base_channels=8)
    model = distiller(s_cfg, t_cfg, save_state(build(t_cfg)))
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    terms = {k: v for k, v in losses.items() if k.startswith('loss_hmld_')}
    assert set(terms) == {'loss_hmld_cls', 'loss_hmld_l1', 'loss_hmld_giou'}
    total = sum(terms.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.student.bbox_head.fc_cls.weight.grad.abs().sum() > 0 \
        if kind == 'detr' else any(
            b.weight.grad is not None and b.weight.grad.abs().sum() > 0
            for b in model.student.bbox_head.cls_branches)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_the_teachers_transformer_runs_before_the_students_forward(
        dino_pair):
    """The teacher's transformer runs while little memory is held: after
    the teacher's backbone and neck, before the student's forward."""
    model = distiller(*dino_pair)
    calls = []
    for role in ('teacher', 'student'):
        detector = getattr(model, role)
        detector.backbone.register_forward_pre_hook(
            lambda *_, role=role: calls.append(f'{role} backbone'))
        detector.encoder.register_forward_pre_hook(
            lambda *_, role=role: calls.append(f'{role} encoder'))
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)
    assert calls == ['teacher backbone', 'teacher encoder',
                     'student backbone', 'student encoder']


def test_the_record_holds_the_matching_queries_only(dino_pair):
    s_cfg, _, _ = dino_pair
    student = build(s_cfg)
    student.train()
    inputs, samples = make_batch(student)
    _, record = student_loss_with_record(student, inputs, samples,
                                         ('queries', ))
    # 2 decoder layers, 30 matching queries (the 10 denoising ones
    # of every group are left out)
    assert record.student_queries.cls_scores.shape == (2, 2, 30, 3)
    assert record.student_queries.bbox_preds.shape == (2, 2, 30, 4)
    student.eval()
    with torch.no_grad():
        feats = student.extract_feat(inputs)
        queries = teacher_query_forward(student, feats, samples)
        head_in = student.forward_transformer(feats, samples)
        direct = student.bbox_head(head_in['hidden_states'],
                                   head_in['references'])
    assert torch.equal(queries.cls_scores, direct[0])
    assert torch.equal(queries.bbox_preds, direct[1])
    # in training the matching queries see the same image as in eval
    assert torch.allclose(record.student_queries.bbox_preds.detach(),
                          queries.bbox_preds, atol=1e-5)


def test_a_student_equal_to_its_teacher_has_zero_box_terms(save_state):
    torch.manual_seed(0)
    cfg = tiny_detector_cfg('dino', base_channels=8)
    ckpt = save_state(build(cfg))
    model = MODELS.build(dict(type='Distiller', student=cfg, teacher=cfg,
                              teacher_ckpt=ckpt, student_ckpt=ckpt,
                              methods=[dict(type='HMLD')]))
    model.init_weights()
    model.train()  # as the Runner does: the backbone's norm_eval holds
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert losses['loss_hmld_l1'].item() == pytest.approx(0, abs=1e-4)
    assert losses['loss_hmld_giou'].item() == pytest.approx(0, abs=1e-4)
    # the class term is then the teacher's entropy, averaged per layer
    with torch.no_grad():
        model.teacher.eval()
        queries = teacher_query_forward(
            model.teacher, model.teacher.extract_feat(inputs), samples)
    p = queries.cls_scores.sigmoid()
    entropy = -(p * p.log() + (1 - p) * (1 - p).log()).sum(-1)
    expected = entropy.sum(dim=(1, 2)) / entropy[0].numel()
    assert losses['loss_hmld_cls'].item() == pytest.approx(
        expected.sum().item(), rel=1e-4)


def _record(samples, student, teacher):
    record = DistillRecord(data_samples=samples)
    record.student_queries = QueryOutputs(*student)
    record.teacher_queries = QueryOutputs(*teacher)
    return record


def test_pairs_follow_the_teacher_and_the_terms_are_the_losss(dino_pair):
    model = distiller(*dino_pair)
    method = model.methods['hmld']
    _, samples = make_batch(model)
    gen = torch.Generator().manual_seed(0)
    t_cls = torch.randn(2, 2, 30, 3, generator=gen) * 3
    # boxes inside the image (centres in [0.4, 0.6], sizes up to 0.6), which
    # clipping leaves as they are
    t_box = torch.cat([torch.rand(2, 2, 30, 2, generator=gen) * 0.2 + 0.4,
                       torch.rand(2, 2, 30, 2, generator=gen) * 0.4 + 0.2],
                      dim=-1)
    order = torch.randperm(30, generator=gen)
    s_cls = (t_cls[:, :, order] + 0.01).requires_grad_(True)
    s_box = t_box[:, :, order] + 0.001
    record = _record(samples, (s_cls, s_box), (t_cls, t_box))
    terms = method(record)
    # student query i is the teacher's query order[i]: every pair is found,
    # so the box terms are the 0.001 offsets and nothing else
    assert terms['l1'].item() == pytest.approx(5 * 2 * 4 * 0.001, rel=1e-3)
    expected = method.loss_hmld(
        s_cls.reshape(-1, 3), t_cls[:, :, order].reshape(-1, 3),
        s_box.reshape(-1, 4), t_box[:, :, order].reshape(-1, 4),
        torch.tensor([[64., 64., 64., 64.]]).expand(120, 4),
        torch.arange(2).repeat_interleave(60), 2)
    for key in ('cls', 'l1', 'giou'):
        assert terms[key].item() == pytest.approx(expected[key].item(),
                                                  rel=1e-5)
    terms['cls'].backward()
    assert s_cls.grad.abs().sum() > 0


def test_gt_matched_targets_are_the_teachers_assigned_queries(dino_pair):
    model = distiller(*dino_pair, teacher_queries='gt_matched')
    method = model.methods['hmld']
    _, samples = make_batch(model, num_items=[3, 0])
    gen = torch.Generator().manual_seed(1)
    teacher = (torch.randn(2, 2, 30, 3, generator=gen),
               torch.rand(2, 2, 30, 4, generator=gen) * 0.5 + 0.25)
    student = (torch.randn(2, 2, 30, 3, generator=gen, requires_grad=True),
               torch.rand(2, 2, 30, 4, generator=gen) * 0.5 + 0.25)
    record = _record(samples, student, teacher)
    keep = method._gt_matched(record.teacher_queries, [0, 1], record)
    # one teacher query per ground-truth box; none for the empty image
    assert [len(k[0]) for k in keep] == [3, 3]
    assert [len(k[1]) for k in keep] == [0, 0]
    # each kept query is the one the teacher's assigner gives a box
    from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
    from mmengine.structures import InstanceData
    result = model.teacher.bbox_head.assigner.assign(
        pred_instances=InstanceData(
            scores=teacher[0][1, 0],
            bboxes=bbox_cxcywh_to_xyxy(teacher[1][1, 0]) * 64),
        gt_instances=samples[0].gt_instances, img_meta=samples[0].metainfo)
    assert keep[1][0].tolist() == \
        torch.nonzero(result.gt_inds > 0)[:, 0].tolist()
    terms = method(record)
    assert all(torch.isfinite(v) for v in terms.values())
    # the empty image alone: no targets, zero terms with the graph
    record = _record(samples[1:], tuple(x[:, 1:] for x in student),
                     tuple(x[:, 1:] for x in teacher))
    terms = method(record)
    assert sum(terms.values()).item() == 0
    sum(terms.values()).backward()


@pytest.mark.parametrize('layers,s,t,want', [
    ('all', 6, 6, ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5])),
    ('all', 3, 6, ([0, 1, 2], [3, 4, 5])),
    ('all', 6, 2, ([4, 5], [0, 1])),
    ('last', 6, 3, ([5], [2])),
])
def test_layer_pairs_align_the_last_layers(dino_pair, layers, s, t, want):
    method = distiller(*dino_pair, layers=layers).methods['hmld']
    assert method.layer_pairs(s, t) == want


def test_refuses_a_dense_student(dino_pair, save_state):
    _, t_cfg, ckpt = dino_pair
    with pytest.raises(TypeError, match='DetectionTransformer'):
        distiller(tiny_detector_cfg('retinanet'), t_cfg, ckpt)


def test_refuses_softmax_and_sigmoid_heads_together(dino_pair, save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('detr', base_channels=8)
    _, t_cfg, ckpt = dino_pair
    with pytest.raises(ValueError, match='classify alike'):
        distiller(s_cfg, t_cfg, ckpt)


def test_gt_matched_needs_the_teachers_assigner(dino_pair):
    s_cfg, t_cfg, ckpt = dino_pair
    t_cfg = copy.deepcopy(t_cfg)
    t_cfg.pop('train_cfg')
    with pytest.raises(ValueError, match='train_cfg'):
        distiller(s_cfg, t_cfg, ckpt, teacher_queries='gt_matched')
    distiller(s_cfg, t_cfg, ckpt)  # 'all' needs no assigner


@pytest.mark.parametrize('bad,match', [
    (dict(teacher_queries='top'), 'teacher_queries'),
    (dict(layers='first'), 'layers'),
    (dict(match_cost=dict(focal=1.0)), 'match_cost'),
])
def test_bad_options_are_named(dino_pair, bad, match):
    with pytest.raises(ValueError, match=match):
        distiller(*dino_pair, **bad)


def test_a_dino_loss_without_dn_meta_is_refused(dino_pair):
    """Without `dn_meta` the denoising queries could not be left out."""
    import types
    s_cfg, _, _ = dino_pair
    student = build(s_cfg)
    student.train()

    def loss_positional(self, inputs, samples):
        head_in = self.forward_transformer(self.extract_feat(inputs), samples)
        return self.bbox_head.loss(
            head_in['hidden_states'], head_in['references'],
            head_in['enc_outputs_class'], head_in['enc_outputs_coord'],
            samples, head_in['dn_meta'])

    student.loss = types.MethodType(loss_positional, student)
    inputs, samples = make_batch(student)
    with pytest.raises(RuntimeError, match='dn_meta'):
        student_loss_with_record(student, inputs, samples, ('queries', ))


def test_ddq_detr_heads_are_refused():
    from types import SimpleNamespace

    from mmdet.models.dense_heads import DDQDETRHead

    from sea_kd.models.capture.query_outputs import check_query_head
    fake = SimpleNamespace(bbox_head=DDQDETRHead.__new__(DDQDETRHead))
    with pytest.raises(TypeError, match='one-to-many'):
        check_query_head(fake, 'student')


def test_clip_to_image_keeps_the_part_inside():
    boxes = torch.tensor([[0.5, 0.5, 0.4, 0.2],     # inside: unchanged
                          [0.1, 0.5, 0.4, 0.2],     # x from -0.1 to 0.3
                          [0.9, 0.95, 0.4, 0.3]])   # past right and bottom
    clipped = clip_to_image(boxes)
    # by hand: x1 y1 x2 y2 clamped to [0, 1], back to centre and size
    assert torch.allclose(clipped, torch.tensor([
        [0.5, 0.5, 0.4, 0.2],
        [0.15, 0.5, 0.3, 0.2],
        [0.85, 0.9, 0.3, 0.2]]), atol=1e-6)


def test_the_teachers_boxes_are_clipped_as_targets(dino_pair):
    """A teacher box past the border is learnt as its part inside (the
    source's behaviour); ``clip_teacher_boxes=False`` keeps it whole."""
    model = distiller(*dino_pair)
    method = model.methods['hmld']
    _, samples = make_batch(model)
    t_cls = torch.zeros(1, 2, 1, 3)
    t_box = torch.tensor([0.1, 0.5, 0.4, 0.2]).expand(1, 2, 1, 4)
    s_box = torch.tensor([0.15, 0.5, 0.3, 0.2]).expand(1, 2, 1, 4)
    record = _record(samples, (t_cls.clone(), s_box), (t_cls, t_box))
    assert method(record)['l1'].item() == pytest.approx(0.0, abs=1e-6)
    method.clip_teacher_boxes = False
    # one layer, two images with one pair each: 5 times the mean over the
    # 2 pairs of the L1 distance |0.15 - 0.1| + |0.3 - 0.4| (the same in
    # both images)
    assert method(record)['l1'].item() == pytest.approx(
        5 * (0.05 + 0.1), rel=1e-4)
