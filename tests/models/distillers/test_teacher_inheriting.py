"""The Distiller's inheriting strategy (``inherit_teacher=True``): the
teacher's neck and heads copied into the student where they fit, the
backbone kept, before the methods' init and ``student_ckpt``."""
import pytest
import torch
from mmdet.registry import MODELS

from ...conftest import build, tiny_detector_cfg, tiny_retina_pair


@pytest.fixture
def pair(save_state):
    return tiny_retina_pair(save_state, student_neck=64)[:3]


def distiller(pair, **kwargs):
    s_cfg, t_cfg, ckpt = pair
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg, teacher_ckpt=ckpt,
        methods=[dict(type='MGD', alpha=2e-5)], **kwargs))
    model.init_weights()
    return model


def test_copies_neck_and_heads_not_the_backbone(pair):
    model = distiller(pair, inherit_teacher=True)
    student, teacher = model.student, model.teacher
    state = student.state_dict()
    for name, value in teacher.state_dict().items():
        if name.startswith('bbox_head.'):  # equal widths: all of it
            assert torch.equal(state[name], value), name
            assert name in model.inherited_params
        elif name.startswith('neck.') and value.shape == state[name].shape:
            assert torch.equal(state[name], value), name
    # the lateral convs read a narrower backbone: kept, and named as kept
    assert 'neck.lateral_convs.0.conv.weight' not in model.inherited_params
    assert 'bbox_head.retina_cls.weight' in model.inherited_params
    assert not any(p.startswith('backbone.') for p in model.inherited_params)
    plain = distiller(pair)
    assert plain.inherited_params == []
    assert not torch.equal(plain.student.bbox_head.retina_cls.weight,
                           teacher.bbox_head.retina_cls.weight)


def test_student_ckpt_is_loaded_after_inheriting(pair, save_state):
    torch.manual_seed(5)
    own = build(pair[0])
    model = distiller(pair, inherit_teacher=True,
                      student_ckpt=save_state(own, 'student.pth'))
    assert torch.equal(model.student.bbox_head.retina_cls.weight,
                       own.bbox_head.retina_cls.weight)


def test_inherit_teacher_must_be_a_bool(pair):
    with pytest.raises(TypeError, match='inherit_teacher must be True or'):
        distiller(pair, inherit_teacher='yes')


def test_single_method_distillers_take_it(pair):
    s_cfg, t_cfg, ckpt = pair
    model = MODELS.build(dict(type='FeatureImitationDistiller', student=s_cfg,
                              teacher=t_cfg, teacher_ckpt=ckpt,
                              inherit_teacher=True))
    model.init_weights()
    assert 'bbox_head.retina_cls.weight' in model.inherited_params


def test_equal_backbones_are_still_not_copied(save_state):
    """With backbones of one shape, only the rule keeps the student's."""
    torch.manual_seed(0)
    cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=32)
    teacher = build(cfg)
    model = MODELS.build(dict(
        type='Distiller', student=cfg, teacher=cfg,
        teacher_ckpt=save_state(teacher, 'teacher.pth'),
        methods=[dict(type='MGD', alpha=2e-5)], inherit_teacher=True))
    model.init_weights()
    assert not torch.equal(model.student.backbone.conv1.weight,
                           teacher.backbone.conv1.weight)
    assert torch.equal(model.student.neck.lateral_convs[0].conv.weight,
                       teacher.neck.lateral_convs[0].conv.weight)
    assert not any(p.startswith('backbone.')
                   for p in model.inherited_params)


def test_inheriting_comes_before_the_methods_init_student(pair,
                                                          monkeypatch):
    seen = []
    model = MODELS.build(dict(
        type='Distiller', student=pair[0], teacher=pair[1],
        teacher_ckpt=pair[2], methods=[dict(type='MGD', alpha=2e-5)],
        inherit_teacher=True))
    method = model.methods['mgd']
    monkeypatch.setattr(method, 'init_student', lambda: seen.append(
        torch.equal(model.student.bbox_head.retina_cls.weight,
                    model.teacher.bbox_head.retina_cls.weight)))
    model.init_weights()
    assert seen == [True]  # the method saw the inherited head
