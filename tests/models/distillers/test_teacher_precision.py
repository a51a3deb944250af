"""teacher_dtype: the teacher's backbone and neck stored and run in bfloat16
or float16, everything after the neck in float32; the distillation terms
close to the float32 teacher's; the two-stage teacher's R-CNN branch and
predict_teacher still work; bad names are refused."""
import copy

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.distillers.teacher_precision import TEACHER_DTYPES

from ...conftest import build, make_batch, tiny_detector_cfg


def distiller(kind, save_state, teacher_dtype, methods):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg(kind, base_channels=16, neck_channels=32)
    ckpt = save_state(build(t_cfg), f'{kind}_teacher.pth')
    torch.manual_seed(1)
    model = MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt,
                              methods=copy.deepcopy(methods),
                              teacher_dtype=teacher_dtype))
    model.init_weights()
    return model


RETINA_METHODS = [dict(type='FeatureImitation', adapter=None),
                  dict(type='ADL', loss_adl=dict(type='ADLoss'))]


@pytest.mark.parametrize('name,tolerance', [('bfloat16', 0.05),
                                            ('float16', 0.01)])
def test_terms_close_to_the_float32_teachers(save_state, name, tolerance):
    full = distiller('retinanet', save_state, 'float32', RETINA_METHODS)
    light = distiller('retinanet', save_state, name, RETINA_METHODS)
    dtype = TEACHER_DTYPES[name]
    teacher = light.teacher
    assert teacher.backbone.conv1.weight.dtype == dtype
    assert teacher.neck.fpn_convs[0].conv.weight.dtype == dtype
    assert teacher.bbox_head.retina_cls.weight.dtype == torch.float32
    assert full.teacher.backbone.conv1.weight.dtype == torch.float32
    # the student and the methods are the same in both
    light.load_state_dict(full.state_dict())
    inputs, samples = make_batch(full)
    with torch.no_grad():
        feats = light.teacher.extract_feat(inputs)
    assert all(f.dtype == torch.float32 for f in feats)
    a = full.loss(inputs, copy.deepcopy(samples))
    b = light.loss(inputs, copy.deepcopy(samples))
    for key in ('loss_fi_feat', 'loss_adl_cls'):
        assert torch.isfinite(b[key])
        assert b[key].dtype == torch.float32
        assert abs(b[key].item() - a[key].item()) <= \
            tolerance * abs(a[key].item()), (key, a[key], b[key])
    # the student's own losses do not depend on the teacher
    assert b['loss_cls'][0].item() == pytest.approx(a['loss_cls'][0].item())
    total = sum(v for k, v in b.items() if k.startswith('loss_adl'))
    total.backward()
    assert all(p.grad is None for p in light.teacher.parameters())


def test_two_stage_teacher_region_branch_and_predict(save_state):
    model = distiller('faster_rcnn', save_state, 'bfloat16',
                      [dict(type='GDetKD')])
    roi_head = model.teacher.roi_head
    assert next(roi_head.parameters()).dtype == torch.float32
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    terms = {k: v for k, v in losses.items() if k.startswith('loss_gdetkd')}
    assert terms and all(torch.isfinite(v) for v in terms.values())
    model.eval()
    with torch.no_grad():
        preds = model.predict_teacher(inputs, copy.deepcopy(samples))
    assert all(p.pred_instances.bboxes.dtype == torch.float32 for p in preds)


def test_bad_dtype_is_named(save_state):
    with pytest.raises(ValueError, match=r"teacher_dtype must be one of "
                       r"\('bfloat16', 'float16', 'float32'\), got 'half'"):
        distiller('retinanet', save_state, 'half', RETINA_METHODS)


def test_float16_trunk_under_bfloat16_autocast(save_state):
    # the trunk runs with autocast off: a bfloat16 autocast would feed its
    # float16 batch norms bfloat16 convolution outputs
    model = distiller('retinanet', save_state, 'float16', RETINA_METHODS)
    inputs, samples = make_batch(model)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    assert all(torch.isfinite(losses[k]) for k in ('loss_fi_feat',
                                                   'loss_adl_cls'))


def test_inheriting_copies_the_full_precision_teacher(save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16, neck_channels=32)
    teacher = build(t_cfg)
    ckpt = save_state(teacher, 'teacher.pth')
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg, teacher_ckpt=ckpt,
        methods=[dict(type='FGD')], inherit_teacher=True,
        teacher_dtype='bfloat16'))
    model.init_weights()
    expected = teacher.neck.fpn_convs[0].conv.weight
    copied = model.student.neck.fpn_convs[0].conv.weight
    assert copied.dtype == torch.float32
    assert torch.equal(copied, expected)  # not rounded to bfloat16
    assert model.teacher.neck.fpn_convs[0].conv.weight.dtype == \
        torch.bfloat16
