"""DSI (RT-DETRv4's Deep Semantic Injector): the projected student level
against the resized teacher map, checked against a reference computed
position by position; the level choice, the resize, gradients to the
student and the projector only, and refused options."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

from ...conftest import build, make_batch, tiny_detector_cfg
from .conftest import recording_step


@pytest.fixture
def ckpt(save_state):
    torch.manual_seed(0)
    return save_state(build(tiny_detector_cfg(
        'retinanet', base_channels=16, neck_channels=64)), 'detector.pth')


def dsi_model(ckpt, input_scale=1.0, **options):
    teacher = dict(type='BackboneTeacher', ckpt_prefix='backbone.',
                   input_scale=input_scale,
                   backbone=dict(type='ResNet', depth=18, base_channels=16,
                                 out_indices=(3, ), init_cfg=None))
    model = MODELS.build(dict(
        type='Distiller', teacher=teacher, teacher_ckpt=ckpt,
        student=tiny_detector_cfg('retinanet', base_channels=8,
                                  neck_channels=32),
        methods=[dict(type='DSI', **options)]))
    model.init_weights()
    return model.train()


def reference(projected, teacher_map, weight):
    """λ · mean over (b, h, w) of 1 - <u, v> / (|u| |v|), position by
    position, on the teacher map already at the student's size."""
    b, _, h, w = projected.shape
    total = 0.0
    for i in range(b):
        for y in range(h):
            for x in range(w):
                u, v = projected[i, :, y, x], teacher_map[i, :, y, x]
                total += 1 - float(u @ v) / max(
                    float(u.norm() * v.norm()), 1e-8)
    return weight * total / (b * h * w)


def test_the_student_level_of_the_teacher_stride_is_chosen(ckpt):
    model = dsi_model(ckpt)
    method = model.methods['dsi']
    # teacher C5 (stride 32) -> student P5, the third of P3-P7
    assert (method.student_level, method.teacher_level) == (2, 0)
    assert method.projector.conv.in_channels == 32
    assert method.projector.conv.out_channels == 128
    halved = dsi_model(ckpt, input_scale=0.5).methods['dsi']
    assert halved.student_level == 3  # stride 64: P6


def step_maps(model, monkeypatch):
    """One step's DSI loss, the projected student level and the teacher's
    map as the step recorded them."""
    method = model.methods['dsi']
    seen = recording_step(method, monkeypatch)
    inputs, samples = make_batch(model)
    loss = model.loss(inputs, samples)['loss_dsi_feat']
    record = seen['record']
    projected = method.projector(
        record.student_neck[method.student_level]).detach()
    return loss, projected, record.teacher_neck[method.teacher_level]


def test_loss_matches_the_position_by_position_reference(ckpt, monkeypatch):
    loss, projected, teacher_map = step_maps(dsi_model(ckpt), monkeypatch)
    assert teacher_map.shape[-2:] == projected.shape[-2:]
    assert loss.item() == pytest.approx(
        reference(projected, teacher_map, 5.0), rel=1e-4)


def test_the_teacher_map_is_resized_to_an_explicit_level(ckpt, monkeypatch):
    loss, projected, teacher_map = step_maps(dsi_model(
        ckpt, student_level=0,
        loss_feat=dict(type='CosineFeatureLoss', loss_weight=1.0)),
        monkeypatch)
    assert teacher_map.shape[-1] * 4 == projected.shape[-1]  # 32 vs 8
    resized = F.interpolate(teacher_map, size=projected.shape[-2:],
                            mode='bilinear', align_corners=False)
    assert loss.item() == pytest.approx(
        reference(projected, resized, 1.0), rel=1e-4)


def test_gradients_reach_the_student_and_projector_only(ckpt):
    model = dsi_model(ckpt)
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)['loss_dsi_feat'].backward()
    projector = model.methods['dsi'].projector.conv.weight
    assert projector.grad is not None and projector.grad.abs().sum() > 0
    neck = model.student.neck.fpn_convs[2].conv.weight
    assert neck.grad is not None and neck.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_images_without_objects_still_distil(ckpt):
    model = dsi_model(ckpt)
    inputs, samples = make_batch(model, num_items=[0, 0])
    loss = model.loss(inputs, samples)['loss_dsi_feat']
    assert torch.isfinite(loss) and loss > 0


def test_a_detector_teacher_works_too(ckpt):
    model = build(dict(
        type='Distiller', teacher_ckpt=ckpt,
        teacher=tiny_detector_cfg('retinanet', base_channels=16,
                                  neck_channels=64),
        student=tiny_detector_cfg('retinanet', base_channels=8,
                                  neck_channels=32),
        methods=[dict(type='DSI')]))
    method = model.methods['dsi']
    assert (method.student_level, method.teacher_level) == (4, 4)
    inputs, samples = make_batch(model.train())
    assert torch.isfinite(model.loss(inputs, samples)['loss_dsi_feat'])


def test_a_detr_student_learns_with_its_last_level(save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16,
                              neck_channels=64)
    ckpt = save_state(build(t_cfg), 'retina.pth')
    teacher = dict(type='BackboneTeacher', ckpt_prefix='backbone.',
                   backbone=t_cfg['backbone'])
    model = build(dict(type='Distiller', teacher=teacher, teacher_ckpt=ckpt,
                       student=tiny_detector_cfg('dino', base_channels=8),
                       methods=[dict(type='DSI')]))
    method = model.methods['dsi']
    assert method.student_level == len(model.student.neck.convs) + len(
        model.student.neck.extra_convs or []) - 1
    inputs, samples = make_batch(model.train())
    assert torch.isfinite(model.loss(inputs, samples)['loss_dsi_feat'])


def test_without_a_level_of_its_stride_the_nearest_learns_it(ckpt):
    # teacher stride 256; the student's P3-P7 reach 128 (level 4)
    model = dsi_model(ckpt, input_scale=0.125)
    assert model.methods['dsi'].student_level == 4
    inputs, samples = make_batch(model)
    assert torch.isfinite(model.loss(inputs, samples)['loss_dsi_feat'])


def test_bad_levels_are_refused(ckpt):
    with pytest.raises(ValueError, match='student_level=7 is out of range'):
        dsi_model(ckpt, student_level=7)
    with pytest.raises(TypeError, match='int index'):
        dsi_model(ckpt, teacher_level='last')
