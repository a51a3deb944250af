"""PKD and CWD as methods: their terms equal the losses on the recorded
levels, the gradient reaches the student only, the build errors."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.losses import CWDLoss, PKDLoss

from ...conftest import build, make_batch, tiny_detector_cfg


def distiller(pair, method, s_cfg=None):
    s, t_cfg, ckpt, _ = pair
    model = MODELS.build(dict(type='Distiller', student=s_cfg or s,
                              teacher=t_cfg, teacher_ckpt=ckpt,
                              methods=[method]))
    model.init_weights()
    return model


def levels_of(model, teacher, inputs, levels):
    with torch.no_grad():
        s = model.student.extract_feat(inputs)
        t = teacher.eval().extract_feat(inputs)
    adapters = model.methods[model.method_names[0]].adapters
    s = [adapters[k](s[i]) if adapters is not None else s[i]
         for k, i in enumerate(levels)]
    return s, [t[i] for i in levels]


@pytest.mark.parametrize('kind, loss', [('PKD', PKDLoss(loss_weight=6.0)),
                                        ('CWD', CWDLoss(1.0, 10.0))])
def test_term_is_the_loss_on_the_chosen_levels(pair, kind, loss):
    model = distiller(pair, dict(type=kind, levels=[0, 1, 2, 3],
                                 adapter=dict(type='ConvAdapter')))
    name = kind.lower()
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    s, t = levels_of(model, pair[3], inputs, [0, 1, 2, 3])
    assert losses[f'loss_{name}_feat'].item() == pytest.approx(
        loss(s, t).item(), rel=1e-4)
    losses[f'loss_{name}_feat'].backward()
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert model.student.bbox_head.retina_cls.weight.grad is None
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('kind', ['PKD', 'CWD'])
def test_different_channels_need_an_adapter(pair, kind):
    with pytest.raises(ValueError, match=r"no adapter is configured; set "
                       r"`adapter=dict\(type='ConvAdapter'\)`"):
        distiller(pair, dict(type=kind))


def test_equal_channels_need_no_adapter(pair):
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=64)
    model = distiller(pair, dict(type='PKD'), s_cfg=s_cfg)
    assert model.methods['pkd'].adapters is None
    assert not any(k.startswith('methods.') for k in model.state_dict())
    losses = model.loss(*make_batch(model, num_items=[0, 0]))  # no boxes
    assert torch.isfinite(losses['loss_pkd_feat'])


def test_cwd_on_dense_logits(pair):
    model = distiller(pair, dict(
        type='CWD', loss_feat=None,
        loss_logits=dict(type='CWDLoss', tau=2.0, loss_weight=3.0)))
    assert model.teacher_parts == ('neck', 'dense_head')
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert 'loss_cwd_feat' not in losses
    with torch.no_grad():
        s = model.student.bbox_head(model.student.extract_feat(inputs))[0]
        teacher = pair[3].eval()
        t = teacher.bbox_head(teacher.extract_feat(inputs))[0]
    expected = CWDLoss(2.0, 3.0)(s, t)
    assert losses['loss_cwd_logit'].item() == pytest.approx(
        expected.item(), rel=1e-4)
    losses['loss_cwd_logit'].backward()
    assert model.student.bbox_head.retina_cls.weight.grad.abs().sum() > 0


def test_cwd_logits_need_the_same_dense_layout(pair, save_state):
    s_cfg, t_cfg, _, _ = pair
    t_cfg = t_cfg.copy()
    t_cfg.bbox_head.anchor_generator = dict(
        t_cfg.bbox_head.anchor_generator, scales_per_octave=2)
    ckpt = save_state(build(t_cfg), 'other.pth')
    with pytest.raises(ValueError, match='anchor'):
        distiller((s_cfg, t_cfg, ckpt, None), dict(
            type='CWD', adapter=dict(type='ConvAdapter'),
            loss_logits=dict(type='CWDLoss')))


def test_cwd_needs_a_term(pair):
    with pytest.raises(ValueError, match='no term to compute'):
        distiller(pair, dict(type='CWD', loss_feat=None))


def test_level_adapters_take_a_given_init_cfg(pair):
    """An adapter init_cfg reaches the level adapters (it used to be
    ignored); without one they keep PyTorch's default initialisation."""
    init = dict(type='Constant', layer='Conv2d', val=0.5, bias=0.0)
    model = distiller(pair, dict(type='PKD', adapter=dict(
        type='ConvAdapter', init_cfg=init)))
    for adapter in model.methods['pkd'].adapters:
        assert torch.all(adapter.conv.weight == 0.5)
        assert torch.all(adapter.conv.bias == 0.0)
    torch.manual_seed(3)
    default = distiller(pair, dict(type='PKD', adapter=dict(
        type='ConvAdapter'))).methods['pkd'].adapters[0].conv
    bound = 1 / default.in_channels**0.5  # PyTorch's kaiming(a=√5) bound
    assert default.weight.abs().max() <= bound + 1e-6
    assert default.bias.abs().max() > 0  # not ConvAdapter's zero bias
