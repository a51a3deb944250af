"""BackboneTeacher: a backbone alone as the teacher of a detector: probed
channels and strides, the input resize, checkpoint keys (a detector's
backbone, a bare backbone, a mismatching file refused), the teacher's own
normalisation, precision, and the methods that refuse it."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

from sea_kd.engine.hooks import TeacherEvaluationHook
from sea_kd.models.teachers import BackboneTeacher

from ...conftest import build, make_batch, tiny_detector_cfg


def resnet(base_channels=16, out_indices=(3, )):
    return dict(type='ResNet', depth=18, base_channels=base_channels,
                out_indices=out_indices, norm_eval=False, init_cfg=None)


def backbone_teacher(**options):
    return dict(type='BackboneTeacher', backbone=resnet(), **options)


def test_probes_the_channels_and_strides_of_its_maps():
    teacher = MODELS.build(dict(type='BackboneTeacher',
                                backbone=resnet(out_indices=(1, 3))))
    assert teacher.feature_channels == [32, 128]
    assert teacher.feature_strides == [(8.0, 8.0), (32.0, 32.0)]
    halved = MODELS.build(backbone_teacher(input_scale=0.5))
    assert halved.feature_strides == [(64.0, 64.0)]


def test_input_scale_averages_areas_before_the_backbone():
    teacher = MODELS.build(backbone_teacher(input_scale=0.5)).eval()
    x = torch.randn(1, 3, 64, 64)
    seen = {}
    teacher.backbone.register_forward_pre_hook(
        lambda m, args: seen.setdefault('input', args[0]))
    teacher.extract_feat(x)
    assert torch.allclose(seen['input'], F.avg_pool2d(x, 2), atol=1e-6)


def test_refuses_to_predict_and_bad_options():
    teacher = MODELS.build(backbone_teacher()).eval()
    with pytest.raises(NotImplementedError, match='no detection head'):
        teacher.predict(torch.zeros(1, 3, 32, 32), [])
    with pytest.raises(NotImplementedError, match='no detection head'):
        teacher(torch.zeros(1, 3, 32, 32), [], mode='loss')
    # its inference is its features
    feats = teacher(torch.zeros(1, 3, 64, 64), mode='tensor')
    assert [tuple(f.shape) for f in feats] == [(1, 128, 2, 2)]
    with pytest.raises(ValueError, match='input_scale'):
        MODELS.build(backbone_teacher(input_scale=0))


@pytest.fixture
def detector_ckpt(save_state):
    """A RetinaNet whose ResNet matches :func:`resnet`, saved."""
    torch.manual_seed(0)
    detector = build(tiny_detector_cfg('retinanet', base_channels=16,
                                       neck_channels=64))
    return detector, save_state(detector, 'detector.pth')


def distiller(teacher_cfg, ckpt, methods=(dict(type='DSI'), ), **options):
    student = tiny_detector_cfg('retinanet', base_channels=8,
                                neck_channels=32)
    model = MODELS.build(dict(type='Distiller', student=student,
                              teacher=teacher_cfg, teacher_ckpt=ckpt,
                              methods=list(methods), **options))
    model.init_weights()
    return model.train()


def test_takes_the_backbone_of_a_detector_checkpoint(detector_ckpt):
    detector, ckpt = detector_ckpt
    model = distiller(backbone_teacher(ckpt_prefix='backbone.'), ckpt)
    own = detector.backbone.state_dict()
    loaded = model.teacher.backbone.state_dict()
    assert set(own) == set(loaded)
    assert all(torch.equal(own[k], loaded[k]) for k in own)


def test_reads_a_bare_backbone_checkpoint(save_state):
    torch.manual_seed(1)
    bare = MODELS.build(resnet())
    ckpt = save_state(bare, 'bare.pth')
    model = distiller(backbone_teacher(ckpt_prefix=''), ckpt)
    key = 'layer4.1.conv2.weight'
    assert torch.equal(model.teacher.backbone.state_dict()[key],
                       bare.state_dict()[key])


def test_a_mismatching_checkpoint_is_refused_naming_the_file(
        detector_ckpt, save_state):
    _, ckpt = detector_ckpt
    # the whole detector read as a backbone teacher's: neck and head keys
    with pytest.raises(RuntimeError, match='(?s)detector.pth.*does not match'):
        distiller(backbone_teacher(), ckpt)
    # a backbone of another width
    narrow = save_state(MODELS.build(resnet(base_channels=8)), 'narrow.pth')
    with pytest.raises(RuntimeError, match='(?s)narrow.pth.*shape mismatches'):
        distiller(backbone_teacher(ckpt_prefix=''), narrow)
    with pytest.raises(ValueError, match="ckpt_prefix='teacher.'"):
        distiller(backbone_teacher(ckpt_prefix='teacher.'), ckpt)


def test_feature_methods_pair_its_maps_by_stride(detector_ckpt):
    _, ckpt = detector_ckpt
    teacher = dict(type='BackboneTeacher', ckpt_prefix='backbone.',
                   backbone=resnet(out_indices=(1, 2, 3)))
    model = distiller(teacher, ckpt, methods=[
        dict(type='FeatureImitation'), dict(type='PKD',
                                            adapter=dict(type='ConvAdapter'))])
    # student P3-P7 (strides 8..128) against C3-C5 (8, 16, 32)
    assert model.methods['fi'].level_pairs == [(0, 0), (1, 1), (2, 2)]
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_fi_feat'])
    assert torch.isfinite(losses['loss_pkd_feat'])


@pytest.mark.parametrize('method', [
    dict(type='ADL'), dict(type='TBD'), dict(type='LD'), dict(type='BCKD'),
    dict(type='CrossKD', reused_teacher_head_idx=1,
         adapter=dict(type='ConvAdapter')),
    dict(type='GDetKD'), dict(type='HMLD')])
def test_methods_that_read_a_head_refuse_it(method, detector_ckpt):
    _, ckpt = detector_ckpt
    with pytest.raises((TypeError, ValueError)) as error:
        distiller(backbone_teacher(ckpt_prefix='backbone.'), ckpt,
                  methods=[method])
    assert str(error.value).endswith(
        'Methods that distil this pair: FI, SEA, PKD, CWD, MGD, FGD, DSI '
        '(docs/compatibility.md).')


def test_what_needs_a_detector_teacher_is_refused_early(detector_ckpt):
    _, ckpt = detector_ckpt
    with pytest.raises(ValueError, match='inherit_teacher'):
        distiller(backbone_teacher(ckpt_prefix='backbone.'), ckpt,
                  inherit_teacher=True)
    model = distiller(backbone_teacher(ckpt_prefix='backbone.'), ckpt)
    hook = TeacherEvaluationHook()
    with pytest.raises(ValueError, match='no detection head'):
        hook.before_run(SimpleNamespace(model=model))
    # feature methods pair by stride: a DETR student tells none
    with pytest.raises(ValueError, match='DSI and an explicit'):
        MODELS.build(dict(
            type='Distiller', teacher=backbone_teacher(
                ckpt_prefix='backbone.'), teacher_ckpt=ckpt,
            student=tiny_detector_cfg('dino', base_channels=8),
            methods=[dict(type='FeatureImitation')]))


def test_the_detector_checkpoint_classes_are_not_the_teachers(save_state):
    """A backbone taken from a detector trained on other classes predicts
    none: the class-identity checks do not apply to it."""
    torch.manual_seed(0)
    detector = build(tiny_detector_cfg('retinanet', base_channels=16,
                                       neck_channels=64))
    path = save_state(detector, 'coco.pth')
    ckpt = torch.load(path)
    ckpt['meta'] = dict(dataset_meta=dict(classes=('a', 'b', 'c')))
    torch.save(ckpt, path)
    model = distiller(backbone_teacher(ckpt_prefix='backbone.'), path)
    assert model.teacher_ckpt_classes is None


def test_ckpt_ignore_leaves_out_a_classifier(save_state):
    torch.manual_seed(1)
    bare = MODELS.build(resnet())
    state = dict(bare.state_dict(), **{'fc.weight': torch.zeros(10, 128),
                                       'fc.bias': torch.zeros(10)})
    path = save_state(SimpleNamespace(state_dict=lambda: state),
                      'classifier.pth')
    with pytest.raises(RuntimeError, match='unexpected keys'):
        distiller(backbone_teacher(ckpt_prefix=''), path)
    model = distiller(backbone_teacher(ckpt_prefix='',
                                       ckpt_ignore=('fc.', )), path)
    key = 'layer1.0.conv1.weight'
    assert torch.equal(model.teacher.backbone.state_dict()[key], state[key])
    with pytest.raises(TypeError, match='ckpt_ignore'):
        MODELS.build(backbone_teacher(ckpt_ignore='fc.'))


@MODELS.register_module(force=True)
class _OneMapBackbone(torch.nn.Module):
    """A backbone that returns a bare tensor, not a tuple of maps."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x):
        return self.conv(x)


def test_a_backbone_without_a_tuple_of_maps_is_refused():
    with pytest.raises(TypeError, match='returns a Tensor'):
        MODELS.build(dict(type='BackboneTeacher',
                          backbone=dict(type='_OneMapBackbone')))


def test_teacher_normalisation_is_its_own(detector_ckpt):
    """A teacher normalising to [0, 1] sees the student's batch converted."""
    _, ckpt = detector_ckpt
    unit = dict(type='DetDataPreprocessor', mean=[0.0] * 3,
                std=[255.0] * 3, bgr_to_rgb=True, pad_size_divisor=1)
    model = distiller(backbone_teacher(ckpt_prefix='backbone.',
                                       data_preprocessor=unit), ckpt)
    assert not model.teacher_shares_preprocessing
    inputs, samples = make_batch(model, batch_size=1, shapes=[(3, 64, 64)])
    pre = model.data_preprocessor
    raw = inputs * pre.std + pre.mean  # the student's RGB pixels
    converted = model.teacher_inputs(inputs, samples)
    assert torch.allclose(converted, raw / 255.0, atol=1e-4)


def test_bfloat16_teacher_trains_a_step(detector_ckpt):
    _, ckpt = detector_ckpt
    model = distiller(backbone_teacher(ckpt_prefix='backbone.'), ckpt,
                      teacher_dtype='bfloat16')
    assert next(model.teacher.backbone.parameters()).dtype == torch.bfloat16
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_dsi_feat'])
    assert isinstance(model.teacher, BackboneTeacher)


@pytest.mark.parametrize('method', [
    dict(type='CWD', adapter=dict(type='ConvAdapter')),
    dict(type='MGD'), dict(type='FGD'), dict(type='SEA')])
def test_the_other_feature_methods_train_a_step(method, detector_ckpt):
    _, ckpt = detector_ckpt
    model = distiller(backbone_teacher(ckpt_prefix='backbone.'), ckpt,
                      methods=[method])
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    name = model.method_names[0]
    terms = [v for k, v in losses.items() if k.startswith(f'loss_{name}_')]
    assert terms and all(torch.isfinite(v) for v in terms)
    sum(terms).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
