"""FGD as a method: its four terms against the pieces summed by a plain
loop over levels, gradients (none into the teacher), no ground truth,
fp16 features, the inheriting strategy and bad configs."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.capture import DistillRecord
from sea_kd.models.losses.focal_global_loss import (attention_loss,
                                                    fgd_attention,
                                                    focal_feature_loss,
                                                    global_loss)
from tests.models.losses.test_focal_global_loss import reference_masks

from ...conftest import make_batch, tiny_detector_cfg
from .conftest import distiller_with


def fgd(pair, **kwargs):
    return distiller_with(pair, dict(type='FGD', **kwargs))


@pytest.mark.parametrize('relative', [False, True])
def test_terms_against_the_pieces_level_by_level(pair, relative):
    weights = dict(alpha_fg=2.0, beta_bg=3.0, gamma_attention=5.0,
                   lambda_global=7.0)
    model = fgd(pair, levels=[0, 2], temperature=0.8,
                relative_temperature=relative, **weights)
    method = model.methods['fgd']
    for level in method.level_modules:  # blocks away from the identity
        torch.nn.init.normal_(level.context_student.transform[-1].weight)
    inputs, samples = make_batch(model, num_items=[2, 1])
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        s = model.student.extract_feat(inputs)
        t = pair[3].eval().extract_feat(inputs)
        boxes = [[tuple(b.tolist()) for b in smp.gt_instances.bboxes]
                 for smp in samples]
        expected = dict(fg=0., bg=0., attention=0., glob=0.)
        for k, level in enumerate([0, 2]):
            mods = method.level_modules[k]
            aligned = mods.align(s[level])
            stride = inputs.shape[-1] / s[level].shape[-1]
            fg, bg = reference_masks(boxes, *s[level].shape[-2:], stride)
            st, ct = fgd_attention(t[level], 0.8, relative)
            ss, cs = fgd_attention(aligned, 0.8, relative)
            f, b = focal_feature_loss(aligned, t[level], fg, bg, st, ct)
            expected['fg'] += f.item()
            expected['bg'] += b.item()
            expected['attention'] += attention_loss(ss, cs, st, ct).item()
            expected['glob'] += global_loss(aligned, t[level],
                                            mods.context_student,
                                            mods.context_teacher).item()
    assert losses['loss_fgd_fg'].item() == pytest.approx(
        2.0 * expected['fg'], rel=1e-4)
    assert losses['loss_fgd_bg'].item() == pytest.approx(
        3.0 * expected['bg'], rel=1e-4)
    assert losses['loss_fgd_attention'].item() == pytest.approx(
        5.0 * expected['attention'], rel=1e-4)
    assert losses['loss_fgd_global'].item() == pytest.approx(
        7.0 * expected['glob'], rel=1e-4)
    assert expected['fg'] > 0 and expected['glob'] > 0
    # the option changes the terms on this pair (its maps are not at
    # mean |F| = 1), so a dropped flag would not pass
    other = fgd(pair, levels=[0, 2], temperature=0.8,
                relative_temperature=not relative, **weights)
    other.load_state_dict(model.state_dict())
    other_losses = other.loss(inputs, samples)
    assert other_losses['loss_fgd_attention'].item() != pytest.approx(
        losses['loss_fgd_attention'].item(), rel=1e-3)


@pytest.mark.parametrize('relative', [False, True])
def test_gradients_reach_student_and_method_not_teacher(pair, relative):
    model = fgd(pair, relative_temperature=relative)
    losses = model.loss(*make_batch(model, num_items=[0, 2]))
    total = sum(v for k, v in losses.items() if k.startswith('loss_fgd'))
    assert torch.isfinite(total)
    total.backward()
    level = model.methods['fgd'].level_modules[0]
    assert level.align.weight.grad.abs().sum() > 0
    assert level.context_teacher.transform[-1].weight.grad.abs().sum() > 0
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('relative', [False, True])
def test_attention_term_alone_trains_the_student(pair, relative):
    model = fgd(pair, relative_temperature=relative)
    losses = model.loss(*make_batch(model))
    losses['loss_fgd_attention'].backward()
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    level = model.methods['fgd'].level_modules[0]
    assert level.context_student.context_mask.weight.grad is None


def test_no_ground_truth_distils_the_background_only(pair):
    model = fgd(pair)
    losses = model.loss(*make_batch(model, num_items=[0, 0]))
    assert losses['loss_fgd_fg'].item() == 0
    assert losses['loss_fgd_bg'].item() > 0
    losses['loss_fgd_bg'].backward()
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('relative', [False, True])
def test_half_features_are_computed_in_fp32(pair, dtype, relative):
    model = fgd(pair, relative_temperature=relative)
    inputs, samples = make_batch(model)
    with torch.no_grad():
        s = tuple(f.to(dtype) for f in model.student.extract_feat(inputs))
        t = tuple(f.to(dtype) for f in pair[3].eval().extract_feat(inputs))
    record = DistillRecord(data_samples=samples, student_neck=s,
                           teacher_neck=t)
    out = model.methods['fgd'](record)
    assert all(v.dtype == torch.float32 and torch.isfinite(v)
               for v in out.values())


def test_deprecated_inherit_teacher_still_copies_neck_and_heads(
        pair, monkeypatch):
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=64)
    logged = []
    monkeypatch.setattr('sea_kd.models.methods.fgd.print_log',
                        lambda msg, **kw: logged.append(msg))
    model = fgd((s_cfg, *pair[1:]), inherit_teacher=True)
    assert any('inherit_teacher=True on the Distiller' in m for m in logged)
    teacher = model.teacher
    assert torch.equal(model.student.bbox_head.retina_cls.weight,
                       teacher.bbox_head.retina_cls.weight)
    assert torch.equal(model.student.neck.fpn_convs[0].conv.weight,
                       teacher.neck.fpn_convs[0].conv.weight)
    # the lateral convs read backbones of other widths: left as they were
    assert 'neck.lateral_convs.0.conv.weight' not in \
        model.methods['fgd'].inherited_params
    assert model.student.backbone.conv1.weight.shape != \
        teacher.backbone.conv1.weight.shape
    plain = fgd((s_cfg, *pair[1:]))
    assert not torch.equal(plain.student.bbox_head.retina_cls.weight,
                           teacher.bbox_head.retina_cls.weight)


def test_bad_configs_are_named(pair):
    with pytest.raises(ValueError, match='levels .* out of range'):
        fgd(pair, levels=[7])
    with pytest.raises(ValueError, match='temperature must be positive'):
        fgd(pair, temperature=0)
    with pytest.raises(ValueError, match='2 strides given for 5'):
        fgd(pair, strides=[8, 16])


def test_inheriting_on_both_the_distiller_and_fgd_is_refused(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    with pytest.raises(ValueError, match='on the Distiller only'):
        MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                          teacher_ckpt=ckpt, inherit_teacher=True,
                          methods=[dict(type='FGD', inherit_teacher=True)]))
