import copy

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors.pair_checks import check_same_dense_layout
from sea_kd.models.distillers import Distiller

from ...conftest import build, make_batch, tiny_detector_cfg


@pytest.fixture
def retina_pair(save_state):
    torch.manual_seed(0)
    student_cfg = tiny_detector_cfg('retinanet', base_channels=8,
                                    neck_channels=16)
    teacher_cfg = tiny_detector_cfg('retinanet', base_channels=16,
                                    neck_channels=32)
    teacher = build(teacher_cfg)
    return student_cfg, teacher_cfg, save_state(teacher, 'teacher.pth'), \
        teacher


def fi(student_cfg, teacher_cfg, ckpt, distiller=None, **fi_options):
    """A Distiller with one FeatureImitation method of ``fi_options``;
    ``distiller``: the Distiller's own options (e.g. ``student_ckpt``)."""
    cfg = dict(type='Distiller', student=student_cfg, teacher=teacher_cfg,
               teacher_ckpt=ckpt,
               methods=[dict(type='FeatureImitation', **fi_options)],
               **(distiller or {}))
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def test_loss_has_student_and_distill_terms(retina_pair):
    s_cfg, t_cfg, ckpt, teacher = retina_pair
    model = fi(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_fi_feat'} <= set(losses)
    # the distillation term is the MSE between adapted student features and
    # the teacher's own features
    with torch.no_grad():
        s_feats = model.student.extract_feat(inputs)
        t_feats = teacher.eval().extract_feat(inputs)
        expected = torch.stack([
            (adapt(s) - t).pow(2).mean()
            for adapt, s, t in zip(model.methods['fi'].adapters, s_feats,
                                   t_feats)
        ]).mean()
    assert losses['loss_fi_feat'].item() == pytest.approx(expected.item(),
                                                          rel=1e-4)


def test_gradients_reach_student_and_adapters_never_teacher(retina_pair):
    s_cfg, t_cfg, ckpt, _ = retina_pair
    model = fi(s_cfg, t_cfg, ckpt, loss_feat=dict(type='FeatureMSELoss',
                                                 loss_weight=1.0))
    model.train()
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)['loss_fi_feat'].backward()
    assert model.methods['fi'].adapters[0].conv.weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad
               for p in model.teacher.parameters())


def test_teacher_frozen_outside_state_dict_and_moved_with_model(retina_pair):
    s_cfg, t_cfg, ckpt, teacher = retina_pair
    model = fi(s_cfg, t_cfg, ckpt)
    model.train()
    assert model.student.training and not model.teacher.training
    assert not any(k.startswith('teacher') for k in model.state_dict())
    assert any(k.startswith('student.') for k in model.state_dict())
    assert model.teacher not in list(model.modules())
    # teacher weights are exactly the checkpoint's
    for (k, v), (_, ref) in zip(model.teacher.state_dict().items(),
                                teacher.state_dict().items()):
        assert torch.equal(v, ref), k
    model.double()
    assert next(model.teacher.parameters()).dtype == torch.float64
    # batch-norm statistics of the teacher never move during training
    before = model.teacher.backbone.bn1.running_mean.clone()
    model.float()
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)
    assert torch.equal(model.teacher.backbone.bn1.running_mean,
                       before.float())


def test_predict_and_tensor_modes_run_the_student_alone(retina_pair):
    s_cfg, t_cfg, ckpt, _ = retina_pair
    model = fi(s_cfg, t_cfg, ckpt).eval()
    inputs, samples = make_batch(model)
    with torch.no_grad():
        ours = model(inputs, copy.deepcopy(samples), mode='predict')
        plain = model.student.predict(inputs, copy.deepcopy(samples))
        raw = model(inputs, mode='tensor')
    assert torch.equal(ours[0].pred_instances.bboxes,
                       plain[0].pred_instances.bboxes)
    assert len(raw[0]) == 5  # student's cls scores per level


def test_missing_and_wrong_teacher_checkpoints(retina_pair, save_state,
                                               tmp_path):
    s_cfg, t_cfg, _, _ = retina_pair
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        fi(s_cfg, t_cfg, str(tmp_path / 'nowhere.pth'))
    with pytest.raises(ValueError, match='needs `teacher_ckpt`'):
        fi(s_cfg, t_cfg, None)
    student_ckpt = save_state(build(s_cfg), 'student.pth')
    with pytest.raises(RuntimeError) as err:
        fi(s_cfg, t_cfg, student_ckpt)
    assert 'student.pth' in str(err.value)
    assert 'shape mismatches' in str(err.value)
    # keys of another architecture: a Faster R-CNN checkpoint
    faster = save_state(build(tiny_detector_cfg('faster_rcnn')), 'frcnn.pth')
    with pytest.raises(RuntimeError) as err:
        fi(s_cfg, t_cfg, faster)
    assert 'frcnn.pth' in str(err.value)
    assert "missing keys, first: ['neck.fpn_convs.4" in str(err.value)
    assert "unexpected keys, first: ['neck.lateral_convs.3" in str(err.value)


def test_distiller_checkpoint_as_teacher_is_explained(retina_pair,
                                                      save_state):
    s_cfg, t_cfg, ckpt, _ = retina_pair
    model = fi(t_cfg, t_cfg, ckpt)
    with pytest.raises(RuntimeError, match='export the student'):
        fi(s_cfg, t_cfg, save_state(model, 'distiller.pth'))


def test_incompatible_pairs_fail_at_build(retina_pair, save_state):
    s_cfg, t_cfg, ckpt, _ = retina_pair
    other = copy.deepcopy(s_cfg)
    other.bbox_head.num_classes = 5
    with pytest.raises(ValueError, match='num_classes=5, teacher '
                       'num_classes=3'):
        fi(other, t_cfg, ckpt)
    with pytest.raises(ValueError, match=r'channels \[16, 16, 16, 16, 16\] '
                       r'differ .* no adapter'):
        fi(s_cfg, t_cfg, ckpt, adapter=None)
    fewer = copy.deepcopy(s_cfg)
    fewer.neck.num_outs = 4
    with pytest.raises(ValueError, match='different numbers of levels'):
        fi(fewer, t_cfg, ckpt)


def test_dense_layout_check_names_what_differs(retina_pair):
    s_cfg, t_cfg, _, teacher = retina_pair
    other = copy.deepcopy(s_cfg)
    other.bbox_head.anchor_generator.ratios = [1.0]
    with pytest.raises(ValueError, match='priors_per_location: student '
                       r'\[3, 3, 3, 3, 3\] vs teacher \[9, 9, 9, 9, 9\]'):
        check_same_dense_layout(build(other), teacher)
    check_same_dense_layout(build(s_cfg), teacher)
    with pytest.raises(TypeError, match='no dense head'):
        check_same_dense_layout(build(tiny_detector_cfg('faster_rcnn')),
                                teacher)


def test_student_checkpoint_loaded_after_init(retina_pair, save_state):
    s_cfg, t_cfg, ckpt, _ = retina_pair
    torch.manual_seed(1)
    pretrained = build(s_cfg)
    path = save_state(pretrained, 'student_pre.pth')
    model = fi(s_cfg, t_cfg, ckpt, distiller=dict(student_ckpt=path))
    for (k, v), (_, ref) in zip(model.student.state_dict().items(),
                                pretrained.state_dict().items()):
        assert torch.equal(v, ref), k


def test_config_file_specs_local_and_package(tmp_path, retina_pair):
    _, _, _, _ = retina_pair
    local = tmp_path / 'student.py'
    local.write_text(
        "_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\n"
        "model = dict(backbone=dict(init_cfg=None), "
        "bbox_head=dict(num_classes=3))\n")
    teacher = MODELS.build(dict(
        type='RetinaNet', **{k: v for k, v in
                             tiny_detector_cfg('retinanet').items()
                             if k != 'type'}))
    del teacher
    from sea_kd.utils import load_model_cfg
    cfg = load_model_cfg(str(local), 'student')
    assert cfg.type == 'RetinaNet' and cfg.bbox_head.num_classes == 3
    cfg = load_model_cfg('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
                         'teacher')
    assert cfg.backbone.depth == 18
    with pytest.raises(FileNotFoundError, match='teacher config file'):
        load_model_cfg(str(tmp_path / 'absent.py'), 'teacher')
    with pytest.raises(ValueError, match='model config with a `type`'):
        load_model_cfg(dict(backbone=dict()), 'student')


def test_distiller_without_methods_is_refused(retina_pair):
    s_cfg, t_cfg, ckpt, _ = retina_pair
    with pytest.raises(ValueError, match='has no `methods`'):
        Distiller(student=s_cfg, teacher=t_cfg, teacher_ckpt=ckpt)


@pytest.mark.parametrize('kind', ['fcos', 'faster_rcnn', 'mask_rcnn'])
def test_feature_imitation_on_other_families(kind, save_state):
    s_cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg(kind, base_channels=16, neck_channels=64)
    ckpt = save_state(build(t_cfg), 'teacher.pth')
    model = fi(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model, with_mask=kind == 'mask_rcnn')
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_fi_feat'])
    assert losses['loss_fi_feat'] > 0
