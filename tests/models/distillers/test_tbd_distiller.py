import copy

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.capture import (student_loss_with_record,
                                   teacher_dense_forward)
from sea_kd.models.detectors import flatten_level_logits
from sea_kd.models.distillers import Distiller
from sea_kd.models.losses import HDLoss, TFDLoss
from sea_kd.models.methods.tbd.harmony_score import dense_harmony_scores

from ...conftest import build, make_batch, tiny_detector_cfg


def tbd(student_cfg, teacher_cfg, ckpt, **tbd_options):
    """A Distiller with one TBD method of ``tbd_options``."""
    model = MODELS.build(dict(type='Distiller', student=student_cfg,
                              teacher=teacher_cfg, teacher_ckpt=ckpt,
                              methods=[dict(type='TBD', **tbd_options)]))
    model.init_weights()
    return model


def total(value):
    """mmdet losses are tensors or per-level lists of tensors."""
    return sum(value) if isinstance(value, list) else value


@pytest.fixture(params=['retinanet', 'fcos', 'atss'])
def pair(request, save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg(request.param, base_channels=8,
                              neck_channels=32)
    t_cfg = tiny_detector_cfg(request.param, base_channels=16,
                              neck_channels=64)
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, 'teacher.pth'), teacher


def test_losses_backward_and_gradients_student_only(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    model = tbd(s_cfg, t_cfg, ckpt)
    method = model.methods['tbd']
    assert method.name == 'tbd'
    assert method.requires_same_dense_layout
    assert set(model.record_parts) == {'neck', 'dense_head'}
    inputs, samples = make_batch(model, num_items=[4, 2])
    losses = model.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_tbd_hd', 'loss_tbd_tfd'} <= \
        set(losses)
    for key in ('loss_tbd_hd', 'loss_tbd_tfd'):
        assert losses[key].dim() == 0 and torch.isfinite(losses[key])
        assert losses[key].dtype == torch.float32
    (losses['loss_tbd_hd'] + losses['loss_tbd_tfd']).backward()
    head = model.student.bbox_head
    cls_params = [p for n, p in head.named_parameters() if 'cls' in n]
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in cls_params)
    assert method.adapters[0].conv.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.neck.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not any(n.startswith('teacher') for n in model.state_dict())


def test_terms_equal_the_losses_on_an_independent_record(pair):
    """HD and TFD recomputed from a fresh capture of the same batch."""
    s_cfg, t_cfg, ckpt, teacher = pair
    model = tbd(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model, num_items=[3, 1])
    with torch.no_grad():
        losses = model.loss(inputs, copy.deepcopy(samples))
        t_feats, t_dense = teacher_dense_forward(
            teacher.eval(), inputs, ('neck', 'dense_head'))
        own, record = student_loss_with_record(
            model.student, inputs, copy.deepcopy(samples),
            ('neck', 'dense_head'))
    targets = record.dense_targets
    harmony = dense_harmony_scores(
        model.student.bbox_head, teacher.bbox_head, t_dense.cls_scores,
        t_dense.bbox_preds, targets.labels, targets.bbox_targets)
    assert harmony.positive.any() and (harmony.scores > 0).any()
    c = model.methods['tbd'].num_classes
    hd = HDLoss()(flatten_level_logits(record.student_dense.cls_scores, c),
                  flatten_level_logits(t_dense.cls_scores, c),
                  harmony.labels.reshape(-1), harmony.scores.reshape(-1),
                  torch.cat(targets.label_weights, 1).reshape(-1))
    assert losses['loss_tbd_hd'].item() == pytest.approx(hd.item(),
                                                         rel=1e-4)
    tfd = TFDLoss()
    sizes = [x.shape[-2:] for x in t_dense.cls_scores]
    with torch.no_grad():
        value = tfd(
            [a(f) for a, f in zip(model.methods['tbd'].adapters,
                                  record.student_neck)],
            list(t_feats), tfd.classification_masks(t_dense.cls_scores),
            tfd.regression_masks(harmony.split(harmony.scores), sizes),
            task_losses=(total(own['loss_cls']), total(own['loss_bbox'])))
    assert losses['loss_tbd_tfd'].item() == pytest.approx(value.item(),
                                                          rel=1e-4)


def test_other_readings_equal_the_losses_on_an_independent_record(pair):
    """The agreement harmony score and the harmony-weighted HD."""
    s_cfg, t_cfg, ckpt, teacher = pair
    model = tbd(s_cfg, t_cfg, ckpt, harmony_form='agreement', loss_tfd=None,
                loss_hd=dict(type='HDLoss', positive_target='teacher',
                             harmony_weight=True))
    inputs, samples = make_batch(model, num_items=[3, 1])
    with torch.no_grad():
        losses = model.loss(inputs, copy.deepcopy(samples))
        _, t_dense = teacher_dense_forward(teacher.eval(), inputs,
                                           ('neck', 'dense_head'))
        _, record = student_loss_with_record(model.student, inputs,
                                             copy.deepcopy(samples),
                                             ('neck', 'dense_head'))
    targets = record.dense_targets
    harmony = dense_harmony_scores(
        model.student.bbox_head, teacher.bbox_head, t_dense.cls_scores,
        t_dense.bbox_preds, targets.labels, targets.bbox_targets,
        form='agreement')
    product = dense_harmony_scores(
        model.student.bbox_head, teacher.bbox_head, t_dense.cls_scores,
        t_dense.bbox_preds, targets.labels, targets.bbox_targets)
    pos = harmony.positive
    assert torch.allclose(harmony.scores[pos],
                          1 - (product.teacher_scores[pos] -
                               product.ious[pos]).abs())
    c = model.methods['tbd'].num_classes
    hd = HDLoss(positive_target='teacher', harmony_weight=True)(
        flatten_level_logits(record.student_dense.cls_scores, c),
        flatten_level_logits(t_dense.cls_scores, c),
        harmony.labels.reshape(-1), harmony.scores.reshape(-1),
        torch.cat(targets.label_weights, 1).reshape(-1))
    assert losses['loss_tbd_hd'].item() == pytest.approx(hd.item(),
                                                         rel=1e-4)
    with pytest.raises(ValueError, match='harmony_form'):
        tbd(s_cfg, t_cfg, ckpt, harmony_form='mean')


def test_record_carries_detached_student_losses(pair, monkeypatch):
    s_cfg, t_cfg, ckpt, _ = pair
    model = tbd(s_cfg, t_cfg, ckpt)
    seen = {}
    original = type(model).distill_losses_from

    def spy(self, record):
        seen['losses'] = record.student_losses
        return original(self, record)

    monkeypatch.setattr(type(model), 'distill_losses_from', spy)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    recorded = seen['losses']
    assert set(recorded) == {k for k in losses if 'tbd' not in k}
    for key, value in recorded.items():
        assert value.dim() == 0 and not value.requires_grad
        assert value.item() == pytest.approx(total(losses[key]).item())


def test_single_terms_and_none_of_them(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    hd_only = tbd(s_cfg, t_cfg, ckpt, loss_tfd=None)
    assert hd_only.methods['tbd'].adapters is None
    inputs, samples = make_batch(hd_only)
    keys = {k for k in hd_only.loss(inputs, samples) if 'tbd' in k}
    assert keys == {'loss_tbd_hd'}
    assert not any(k.startswith('methods.tbd.adapters')
                   for k in hd_only.state_dict())
    tfd_only = tbd(s_cfg, t_cfg, ckpt, loss_hd=None,
                   loss_tfd=dict(type='TFDLoss', task_weights='fixed',
                                 reg_mask='iou'))
    keys = {k for k in tfd_only.loss(inputs, samples) if 'tbd' in k}
    assert keys == {'loss_tbd_tfd'}
    with pytest.raises(ValueError, match='at least one of loss_hd'):
        tbd(s_cfg, t_cfg, ckpt, loss_hd=None, loss_tfd=None)


def test_images_without_ground_truth(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    model = tbd(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model, num_items=[0, 0])
    losses = model.loss(inputs, samples)
    for key in ('loss_tbd_hd', 'loss_tbd_tfd'):
        assert torch.isfinite(losses[key]) and losses[key] > 0
    (losses['loss_tbd_hd'] + losses['loss_tbd_tfd']).backward()


def test_one_class(save_state):
    s_cfg = tiny_detector_cfg('retinanet', num_classes=1)
    t_cfg = tiny_detector_cfg('retinanet', num_classes=1, base_channels=16)
    model = tbd(s_cfg, t_cfg, save_state(build(t_cfg)))
    inputs, samples = make_batch(model)
    for sample in samples:
        sample.gt_instances.labels.zero_()
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_tbd_hd'])
    assert torch.isfinite(losses['loss_tbd_tfd'])


def test_missing_student_loss_names_are_reported(save_state):
    s_cfg = tiny_detector_cfg('retinanet')
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16)
    model = tbd(s_cfg, t_cfg, save_state(build(t_cfg)),
                reg_loss_keys=('loss_iou', ))
    inputs, samples = make_batch(model)
    with pytest.raises(ValueError, match=r"\['loss_iou'\] not found.*"
                       r"loss_bbox"):
        model.loss(inputs, samples)


def test_build_errors(save_state):
    s_cfg = tiny_detector_cfg('retinanet')
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16,
                              neck_channels=64)
    ckpt = save_state(build(t_cfg))
    with pytest.raises(ValueError, match='anchor layouts'):
        tbd(tiny_detector_cfg('fcos'), t_cfg, ckpt)
    other = copy.deepcopy(s_cfg)
    other.bbox_head.anchor_generator.strides = [8, 16, 32, 64, 256]
    with pytest.raises(ValueError, match=r'strides: student .*256'):
        tbd(other, t_cfg, ckpt)
    atss = tiny_detector_cfg('atss')
    with pytest.raises(ValueError, match='anchor layouts'):
        tbd(atss, t_cfg, ckpt)
    with pytest.raises(ValueError, match='no adapter'):
        tbd(s_cfg, t_cfg, ckpt, adapter=None)
    with pytest.raises(ValueError, match='kappa'):
        tbd(s_cfg, t_cfg, ckpt, kappa=2.0)
    faster = tiny_detector_cfg('faster_rcnn')
    with pytest.raises(TypeError, match='not a one-stage detector'):
        tbd(faster, faster, save_state(build(faster), 'f.pth'))
    assert issubclass(MODELS.get('TBDDistiller'), Distiller)
