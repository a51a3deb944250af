"""SEA in a Distiller end to end with tiny detectors of the four families."""
import copy

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors.strides import prior_strides_of
from sea_kd.models.losses.sea_loss import SEALoss

from ...conftest import build, make_batch, tiny_detector_cfg


def sea(student_cfg, teacher_cfg, ckpt, **sea_options):
    """A Distiller with one SEA method of ``sea_options``."""
    model = MODELS.build(dict(
        type='Distiller', student=student_cfg, teacher=teacher_cfg,
        teacher_ckpt=ckpt,
        methods=[dict(type='SEA', **copy.deepcopy(sea_options))]))
    model.init_weights()
    return model


def make_pair(kind, save_state):
    torch.manual_seed(0)
    # FCOS's GroupNorm head needs multiples of 32 channels
    s_ch = 32 if kind == 'fcos' else 16
    s_cfg = tiny_detector_cfg(kind, base_channels=8, neck_channels=s_ch)
    t_cfg = tiny_detector_cfg(kind, base_channels=16, neck_channels=2 * s_ch)
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, f'{kind}.pth'), teacher


@pytest.mark.parametrize('kind', ['retinanet', 'fcos', 'faster_rcnn'])
def test_loss_keys_value_and_gradients(kind, save_state):
    s_cfg, t_cfg, ckpt, teacher = make_pair(kind, save_state)
    model = sea(s_cfg, t_cfg, ckpt)
    method = model.methods['sea']
    model.train()
    assert method.adapter is None  # anchor term off: no extra parameters
    assert not any(k.startswith('methods.sea.adapter')
                   for k in model.state_dict())
    inputs, samples = make_batch(model, num_items=[3, 2])
    losses = model.loss(inputs, samples)
    assert 'loss_sea_rel' in losses and 'loss_sea_anc' not in losses
    assert ('loss_cls' in losses) or ('loss_rpn_cls' in losses)
    # the same value from an independent forward of both models
    with torch.no_grad():
        s_feats = model.student.extract_feat(inputs)
        t_feats = teacher.eval().extract_feat(inputs)
        # strides of the head's prior generator (inferring them from the
        # sizes fails here: on a 64-px input P6 and P7 are both 1 x 1)
        expected = SEALoss()(s_feats, t_feats,
                             [s.gt_instances for s in samples],
                             [s.metainfo for s in samples],
                             strides=method.strides)['rel']
    assert losses['loss_sea_rel'].item() == pytest.approx(expected.item(),
                                                          rel=1e-4)
    assert losses['loss_sea_rel'] > 0
    losses['loss_sea_rel'].backward()
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_strides_from_prior_generator(save_state):
    s_cfg, t_cfg, ckpt, _ = make_pair('faster_rcnn', save_state)
    model = sea(s_cfg, t_cfg, ckpt)
    assert model.methods['sea'].strides == [(float(s), float(s))
                                            for s in (4, 8, 16, 32, 64)]
    retina = build(tiny_detector_cfg('retinanet'))
    assert prior_strides_of(retina) == [(float(s), float(s))
                                        for s in (8, 16, 32, 64, 128)]
    assert prior_strides_of(torch.nn.Linear(1, 1)) is None
    model = sea(s_cfg, t_cfg, ckpt, strides=[4, 8, 16, 32, 64])
    assert model.methods['sea'].strides[0] == (4., 4.)
    with pytest.raises(ValueError, match='3 strides given for 5'):
        sea(s_cfg, t_cfg, ckpt, strides=[4, 8, 16])


def test_mask_rcnn_uses_instance_masks(save_state):
    s_cfg, t_cfg, ckpt, teacher = make_pair('mask_rcnn', save_state)
    model = sea(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model, with_mask=True, num_items=[4, 3])
    assert all('masks' in s.gt_instances for s in samples)
    losses = model.loss(inputs, samples)
    assert {'loss_sea_rel', 'loss_mask'} <= set(losses)
    with torch.no_grad():
        s_feats = model.student.extract_feat(inputs)
        t_feats = teacher.eval().extract_feat(inputs)
        args = (s_feats, t_feats, [s.gt_instances for s in samples],
                [s.metainfo for s in samples], model.methods['sea'].strides)
        with_masks = SEALoss(use_masks=True)(*args)['rel']
        with_boxes = SEALoss(use_masks=False)(*args)['rel']
    assert losses['loss_sea_rel'].item() == pytest.approx(
        with_masks.item(), rel=1e-4)
    assert with_masks.item() != pytest.approx(with_boxes.item(), rel=1e-3)
    losses['loss_sea_rel'].backward()
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0


def test_no_ground_truth_and_mixed_image_sizes(save_state):
    s_cfg, t_cfg, ckpt, _ = make_pair('retinanet', save_state)
    model = sea(s_cfg, t_cfg, ckpt)
    inputs, samples = make_batch(model, num_items=[0, 0])
    loss = model.loss(inputs, samples)['loss_sea_rel']
    assert torch.isfinite(loss) and loss.item() == 0
    inputs, samples = make_batch(model, shapes=[(3, 64, 64), (3, 40, 52)],
                                 num_items=[3, 2])
    assert inputs.shape[-2:] == (64, 64)
    loss = model.loss(inputs, samples)['loss_sea_rel']
    assert torch.isfinite(loss) and loss > 0


def test_anchor_alignment_builds_and_trains_an_adapter(save_state):
    s_cfg, t_cfg, ckpt, _ = make_pair('retinanet', save_state)
    model = sea(s_cfg, t_cfg, ckpt,
                loss_sea=dict(type='SEALoss', anchor_weight=0.1))
    adapter = model.methods['sea'].adapter
    assert tuple(adapter.conv.weight.shape[:2]) == (32, 16)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert {'loss_sea_rel', 'loss_sea_anc'} <= set(losses)
    losses['loss_sea_anc'].backward()
    assert adapter.conv.weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert any(k.startswith('methods.sea.adapter.')
               for k in model.state_dict())


def test_build_errors_name_the_problem(save_state):
    s_cfg, t_cfg, ckpt, _ = make_pair('retinanet', save_state)
    with pytest.raises(ValueError, match='no adapter is configured'):
        sea(s_cfg, t_cfg, ckpt, adapter=None,
            loss_sea=dict(type='SEALoss', anchor_weight=1.0))
    with pytest.raises(ValueError, match='must be 1x1'):
        sea(s_cfg, t_cfg, ckpt, adapter=dict(type='ConvAdapter',
                                             kernel_size=3),
            loss_sea=dict(type='SEALoss', anchor_weight=1.0))
    with pytest.raises(ValueError, match='out of range for 5 neck levels'):
        sea(s_cfg, t_cfg, ckpt, loss_sea=dict(type='SEALoss',
                                              levels=[0, 5]))
    fewer = copy.deepcopy(s_cfg)
    fewer.neck.num_outs = 4
    with pytest.raises(ValueError, match='different numbers of levels'):
        sea(fewer, t_cfg, ckpt)
    # equal channels need no adapter, even for the anchor term
    model = sea(t_cfg, t_cfg, ckpt, adapter=None,
                loss_sea=dict(type='SEALoss', anchor_weight=1.0))
    inputs, samples = make_batch(model)
    assert torch.isfinite(model.loss(inputs, samples)['loss_sea_anc'])
