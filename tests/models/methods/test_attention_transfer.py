"""AttentionTransfer: backbone-stage taps, the loss against a plain-loop
reference, the build-time errors for taps."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.capture import DistillRecord

from ...conftest import make_batch


def at(pair, **kwargs):
    s_cfg, t_cfg, ckpt, _ = pair
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg, teacher_ckpt=ckpt,
        methods=[dict(type='AttentionTransfer', **kwargs)]))
    model.init_weights()
    return model


def reference(s, t, beta):
    """β · mean over maps of the mean squared difference of the
    L2-normalised channel means of the squared activations, by loops."""
    total = 0.0
    for s_map, t_map in zip(s, t):
        b, _, h, w = s_map.shape
        diff = 0.0
        for i in range(b):
            a_s = [float((s_map[i, :, y, x]**2).mean()) for y in range(h)
                   for x in range(w)]
            a_t = [float((t_map[i, :, y, x]**2).mean()) for y in range(h)
                   for x in range(w)]
            n_s = sum(v * v for v in a_s)**0.5
            n_t = sum(v * v for v in a_t)**0.5
            diff += sum((u / n_s - v / n_t)**2 for u, v in zip(a_s, a_t))
        total += diff / (b * h * w)
    return beta * total / len(s)


def test_loss_against_a_plain_loop_on_backbone_stages(pair):
    model = at(pair, paths=('backbone.layer2', 'backbone.layer3'), beta=10.)
    assert model.teacher_parts == () and model.record_parts == ()
    inputs, samples = make_batch(model, shapes=[(3, 32, 32)] * 2)
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        s = model.student.backbone(inputs)
        t = pair[3].eval().backbone(inputs)
    expected = reference([s[1], s[2]], [t[1], t[2]], 10.)
    assert losses['loss_at_map'].item() == pytest.approx(expected, rel=1e-4)
    losses['loss_at_map'].backward()
    stem = model.student.backbone.conv1.weight.grad
    assert stem is not None and stem.abs().sum() > 0
    assert model.student.bbox_head.retina_cls.weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())


def test_identical_maps_give_zero(pair):
    model = at(pair)
    x = torch.randn(2, 8, 4, 4)
    record = DistillRecord(data_samples=[])
    record.student_taps = {'backbone.layer3': [x.requires_grad_()]}
    record.teacher_taps = {'backbone.layer3': [3 * x.detach()]}
    loss = model.methods['at'](record)['map']
    assert loss.item() == pytest.approx(0.0, abs=1e-9)


def test_bf16_activations_are_computed_in_fp32(pair):
    model = at(pair)
    x = torch.randn(1, 8, 4, 4)
    y = torch.randn(1, 16, 4, 4)
    record = DistillRecord(data_samples=[])
    record.student_taps = {'backbone.layer3': [x.bfloat16()]}
    record.teacher_taps = {'backbone.layer3': [y.bfloat16()]}
    loss = model.methods['at'](record)['map']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(
        reference([x.bfloat16().float()], [y.bfloat16().float()], 1e3),
        rel=1e-4)


def test_missing_path_is_named_at_build(pair):
    with pytest.raises(ValueError, match=r'`backbone\.layer9`.*backbone has '
                       'no child `layer9`'):
        at(pair, paths=('backbone.layer9', ))


def test_teacher_path_that_does_not_run_is_refused_at_build(pair):
    with pytest.raises(ValueError, match=r'`bbox_head\.retina_cls` does not '
                       'run'):
        at(pair, paths=('bbox_head.retina_cls', ))


def test_different_strides_are_named(pair):
    model = at(pair, paths=('backbone.layer3', ))
    x, y = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)
    record = DistillRecord(data_samples=[])
    record.student_taps = {'backbone.layer3': [x]}
    record.teacher_taps = {'backbone.layer3': [y]}
    with pytest.raises(ValueError, match=r'\(4, 4\) in the student and '
                       r'\(2, 2\) in the teacher'):
        model.methods['at'](record)
