import copy

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors import flatten_level_logits
from sea_kd.models.losses import ADLoss

from ...conftest import build, make_batch, tiny_detector_cfg


def adl(student_cfg, teacher_cfg, ckpt, **adl_options):
    """A Distiller with one ADL method of ``adl_options``."""
    model = MODELS.build(dict(type='Distiller', student=student_cfg,
                              teacher=teacher_cfg, teacher_ckpt=ckpt,
                              methods=[dict(type='ADL', **adl_options)]))
    model.init_weights()
    return model


@pytest.fixture(params=['retinanet', 'fcos'])
def pair(request, save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg(request.param, base_channels=8,
                              neck_channels=32)
    t_cfg = tiny_detector_cfg(request.param, base_channels=16,
                              neck_channels=64)
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, 'teacher.pth'), teacher


def test_flatten_matches_target_order():
    # level 0: B=2, A=2, C=3, H=1, W=2 ; value encodes (b, h, w, a, c)
    b, a, c, h, w = 2, 2, 3, 1, 2
    level = torch.zeros(b, a * c, h, w)
    for bi in range(b):
        for wi in range(w):
            for ai in range(a):
                for ci in range(c):
                    level[bi, ai * c + ci, 0, wi] = bi * 1000 + wi * 100 + \
                        ai * 10 + ci
    rows = flatten_level_logits([level, level[:, :, :, :1]], c)
    assert rows.shape == (2 * (4 + 2), 3)
    # image 0, level 0, w=1, anchor 0 is row 2; image 1 starts at row 6
    assert rows[2].tolist() == [100, 101, 102]
    assert rows[6].tolist() == [1000, 1001, 1002]
    assert rows[4].tolist() == [0, 1, 2]  # image 0, level 1, anchor 0


def test_loss_is_adloss_over_unignored_anchors(pair):
    s_cfg, t_cfg, ckpt, teacher = pair
    model = adl(s_cfg, t_cfg, ckpt, loss_adl=dict(type='ADLoss',
                                                  base='bce'))
    inputs, samples = make_batch(model, num_items=[4, 2])
    losses = model.loss(inputs, samples)
    assert {'loss_cls', 'loss_bbox', 'loss_adl_cls'} <= set(losses)
    # independent recomputation: both heads' outputs, the assigner's weights
    head = model.student.bbox_head
    with torch.no_grad():
        s_out = head(model.student.extract_feat(inputs))
        t_out = teacher.eval().bbox_head(teacher.extract_feat(inputs))
    c = head.num_classes
    s_rows = torch.cat([x.permute(0, 2, 3, 1).reshape(2, -1, c)
                        for x in s_out[0]], 1).reshape(-1, c)
    t_rows = torch.cat([x.permute(0, 2, 3, 1).reshape(2, -1, c)
                        for x in t_out[0]], 1).reshape(-1, c)
    if type(head).__name__ == 'RetinaHead':
        sizes = [x.shape[-2:] for x in s_out[0]]
        anchors, valid = head.get_anchors(
            sizes, [d.metainfo for d in samples], device='cpu')
        targets = head.get_targets(anchors, valid,
                                   [d.gt_instances for d in samples],
                                   [d.metainfo for d in samples])
        keep = torch.cat(targets[1], 1).reshape(-1) > 0
        assert not keep.all()  # the ignore band is present
    else:
        keep = torch.ones(len(s_rows), dtype=torch.bool)
    expected = ADLoss(base='bce')(s_rows, t_rows, keep)
    assert losses['loss_adl_cls'].item() == pytest.approx(expected.item(),
                                                          rel=1e-4)


def test_gradient_to_student_head_not_teacher(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    model = adl(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model)
    model.loss(inputs, samples)['loss_adl_cls'].backward()
    cls_conv = [p for n, p in model.student.bbox_head.named_parameters()
                if 'cls' in n and p.grad is not None]
    assert cls_conv and any(p.grad.abs().sum() > 0 for p in cls_conv)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_image_without_ground_truth_is_finite(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    model = adl(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model, num_items=[0, 0])
    loss = model.loss(inputs, samples)['loss_adl_cls']
    assert torch.isfinite(loss) and loss > 0


def test_build_errors_name_what_differs(save_state):
    s_cfg = tiny_detector_cfg('retinanet')
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16)
    other = copy.deepcopy(s_cfg)
    other.bbox_head.anchor_generator.strides = [8, 16, 32, 64, 256]
    with pytest.raises(ValueError, match=r'strides: student .*256.* vs '
                       r'teacher .*128'):
        adl(other, t_cfg, save_state(build(t_cfg)))
    other = copy.deepcopy(s_cfg)
    other.bbox_head.anchor_generator.scales_per_octave = 2
    with pytest.raises(ValueError, match='priors_per_location'):
        adl(other, t_cfg, save_state(build(t_cfg)))
    faster = tiny_detector_cfg('faster_rcnn')
    with pytest.raises(TypeError, match='not a one-stage detector'):
        adl(faster, faster, save_state(build(faster), 'f.pth'))
    fcos = tiny_detector_cfg('fcos')
    with pytest.raises(ValueError, match='anchor layouts'):
        adl(fcos, t_cfg, save_state(build(t_cfg), 't2.pth'))
