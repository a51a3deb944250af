"""The teacher sees the batch its own data preprocessor would make: the
student's batch converted (channel order, mean/std, padding value)."""
import copy

import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.model import BaseDataPreprocessor

from sea_kd.models.capture import MethodTap, teacher_region_forward
from sea_kd.models.distillers.teacher_preprocessing import (
    check_convertible_preprocessing, convert_to_teacher_inputs)

from ...conftest import build, tiny_detector_cfg

PYTORCH_RGB = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                   pad_size_divisor=32)
CAFFE_BGR = dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                 std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=32)
#: two images of different sizes: the smaller one is padded
SHAPES = [(3, 70, 90), (3, 50, 60)]


def raw_batch(shapes=SHAPES, seed=0):
    torch.manual_seed(seed)
    return demo_mm_inputs(batch_size=len(shapes), image_shapes=shapes,
                          num_items=[3] * len(shapes), num_classes=3)


def preprocessor(**cfg):
    cfg = dict(cfg)
    cfg.pop('type', None)
    return DetDataPreprocessor(**cfg)


def preprocess(pp, packed, training=True):
    data = pp(copy.deepcopy(packed), training)
    return data['inputs'], data['data_samples']


@pytest.mark.parametrize('student,teacher', [
    (PYTORCH_RGB, CAFFE_BGR),
    (CAFFE_BGR, PYTORCH_RGB),
    (PYTORCH_RGB, dict(CAFFE_BGR, pad_value=-3.5)),
    (PYTORCH_RGB, dict(PYTORCH_RGB, bgr_to_rgb=False, pad_value=1.0)),
    (PYTORCH_RGB, dict(pad_size_divisor=32)),  # teacher without mean/std
    (dict(pad_size_divisor=32, rgb_to_bgr=True),
     dict(CAFFE_BGR, mean=[110.0], std=[50.0])),  # one value for all
    (dict(PYTORCH_RGB, pad_size_divisor=64), CAFFE_BGR),
])
def test_conversion_equals_the_teachers_own_preprocessing(student, teacher):
    s_pp, t_pp = preprocessor(**student), preprocessor(**teacher)
    packed = raw_batch()
    inputs, samples = preprocess(s_pp, packed)
    expected, _ = preprocess(t_pp, packed)
    assert not check_convertible_preprocessing(s_pp, t_pp)
    converted = convert_to_teacher_inputs(inputs, samples, s_pp, t_pp)
    assert converted.dtype == inputs.dtype
    # the student's divisor may give a larger canvas than the teacher's
    h, w = expected.shape[-2:]
    torch.testing.assert_close(converted[..., :h, :w], expected,
                               atol=1e-4, rtol=1e-6)
    beyond = torch.cat([converted[..., h:, :].flatten(),
                        converted[..., :, w:].flatten()])
    assert torch.all(beyond == float(t_pp.pad_value))
    # without the conversion the teacher would see something else
    assert (inputs[..., :h, :w] - expected).abs().max() > 0.5


def test_identical_preprocessing_gives_the_same_tensor():
    s_pp, t_pp = preprocessor(**PYTORCH_RGB), preprocessor(**PYTORCH_RGB)
    assert check_convertible_preprocessing(s_pp, t_pp)
    # settings that act on data samples only, or only in training mode
    t_pp.pad_mask, t_pp.boxtype2tensor = True, False
    assert check_convertible_preprocessing(s_pp, t_pp)
    assert not check_convertible_preprocessing(
        s_pp, preprocessor(**dict(PYTORCH_RGB, pad_value=1)))
    # a coarser student canvas holds the same pixels; a finer one does not
    # suit the teacher's strides
    coarse = preprocessor(**dict(PYTORCH_RGB, pad_size_divisor=64))
    assert check_convertible_preprocessing(coarse, t_pp)
    with pytest.raises(ValueError, match='pad_size_divisor=64'):
        check_convertible_preprocessing(t_pp, coarse)


@pytest.fixture(scope='module')
def caffe_teacher(tmp_path_factory):
    """A tiny caffe-style (BGR, std 1) RetinaNet and its checkpoint."""
    torch.manual_seed(0)
    cfg = tiny_detector_cfg('retinanet', base_channels=16, neck_channels=32)
    cfg.data_preprocessor = copy.deepcopy(CAFFE_BGR)
    teacher = build(cfg).eval()
    path = tmp_path_factory.mktemp('caffe_teacher') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), path)
    return cfg, str(path), teacher


def distiller(method_type, student_cfg, teacher_cfg, ckpt):
    """A Distiller with one method of type ``method_type``."""
    model = MODELS.build(dict(type='Distiller', student=student_cfg,
                              teacher=copy.deepcopy(teacher_cfg),
                              teacher_ckpt=ckpt,
                              methods=[dict(type=method_type)]))
    model.init_weights()
    return model.train()


def record_of(model, monkeypatch):
    """Run ``model.loss`` on a padded raw batch; return the record and the
    teacher's inputs of the step."""
    seen = {}
    original = model.distill_losses_from

    def spy(record):
        seen['record'] = record
        return original(record)

    monkeypatch.setattr(model, 'distill_losses_from', spy)
    inputs, samples = preprocess(model.data_preprocessor, raw_batch())
    with MethodTap(model.teacher, 'extract_feat') as tap:
        losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items()
               if k.startswith('loss_') and torch.is_tensor(v))
    return seen['record'], tap.first.args[0], inputs


def test_teacher_features_through_the_distiller_equal_the_teacher_alone(
        caffe_teacher, monkeypatch):
    t_cfg, ckpt, teacher = caffe_teacher
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=16)
    model = distiller('ADL', s_cfg, t_cfg, ckpt)
    assert not model.teacher_shares_preprocessing
    record, teacher_inputs, student_inputs = record_of(model, monkeypatch)
    alone_inputs, _ = preprocess(teacher.data_preprocessor, raw_batch(),
                                 training=False)
    torch.testing.assert_close(teacher_inputs, alone_inputs, atol=1e-4,
                               rtol=1e-6)
    with torch.no_grad():
        feats = teacher.extract_feat(alone_inputs)
        cls_scores, bbox_preds = teacher.bbox_head(feats)
        unconverted = teacher.extract_feat(student_inputs)
    for ours, ref, wrong in zip(record.teacher_neck, feats, unconverted):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
        assert (wrong - ref).abs().max() > 1e-2
    for ours, ref in zip(record.teacher_dense.cls_scores, cls_scores):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    for ours, ref in zip(record.teacher_dense.bbox_preds, bbox_preds):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_teacher_region_outputs_through_the_distiller(monkeypatch, save_state):
    """The R-CNN branch (G-DetKD homogeneous) runs on converted features."""
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('faster_rcnn', base_channels=16,
                              neck_channels=32)
    t_cfg.data_preprocessor = copy.deepcopy(CAFFE_BGR)
    teacher = build(t_cfg).eval()
    s_cfg = tiny_detector_cfg('faster_rcnn', base_channels=8,
                              neck_channels=16)
    model = distiller('GDetKD', s_cfg, t_cfg, save_state(teacher))
    record, _, _ = record_of(model, monkeypatch)
    alone_inputs, _ = preprocess(teacher.data_preprocessor, raw_batch(),
                                 training=False)
    with torch.no_grad():
        ref = teacher_region_forward(
            teacher, teacher.extract_feat(alone_inputs), record.roi.rois)
    torch.testing.assert_close(record.roi.teacher_feats, ref['bbox_feats'],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(record.roi.teacher_cls, ref['cls_score'],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(record.roi.teacher_repr, ref['repr'],
                               atol=1e-4, rtol=1e-4)


def test_same_preprocessing_hands_over_the_very_same_tensor(save_state):
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16, neck_channels=32)
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=16)
    model = distiller('FeatureImitation', s_cfg, t_cfg,
                      save_state(build(t_cfg)))
    assert model.teacher_shares_preprocessing
    inputs, samples = preprocess(model.data_preprocessor, raw_batch())
    assert model.teacher_inputs(inputs, samples) is inputs
    with MethodTap(model.teacher, 'extract_feat') as tap:
        model.loss(inputs, samples)
    assert tap.first.args[0] is inputs


def test_non_convertible_preprocessing_fails_at_build(caffe_teacher,
                                                      save_state):
    t_cfg, ckpt, _ = caffe_teacher
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=16)
    coarse = copy.deepcopy(t_cfg)
    coarse.data_preprocessor.pad_size_divisor = 64
    with pytest.raises(ValueError) as err:
        distiller('FeatureImitation', s_cfg, coarse, ckpt)
    message = str(err.value)
    assert 'pad_size_divisor=64' in message
    assert 'pad_size_divisor=32' in message
    assert 'to a multiple of 64' in message
    # a student divisor that is a multiple of the teacher's is fine
    s_coarse = copy.deepcopy(s_cfg)
    s_coarse.data_preprocessor.pad_size_divisor = 64
    distiller('FeatureImitation', s_coarse, coarse, ckpt)

    plain = copy.deepcopy(t_cfg)
    plain.data_preprocessor = dict(type='BaseDataPreprocessor')
    with pytest.raises(TypeError, match=r'teacher data_preprocessor is a '
                       r'BaseDataPreprocessor.*DetDataPreprocessor'):
        distiller('FeatureImitation', s_cfg, plain, ckpt)
    with pytest.raises(TypeError, match='distiller \\(student\\) '
                       'data_preprocessor is a BaseDataPreprocessor'):
        check_convertible_preprocessing(BaseDataPreprocessor(),
                                        preprocessor(**CAFFE_BGR))
    plain_pp = BaseDataPreprocessor()
    assert check_convertible_preprocessing(plain_pp, plain_pp)
    with pytest.raises(ValueError, match='zero std'):
        check_convertible_preprocessing(
            preprocessor(**PYTORCH_RGB),
            preprocessor(**dict(CAFFE_BGR, std=[1.0, 0.0, 1.0])))


def test_gdetkd_converts_a_caffe_student(save_state):
    """G-DetKD used to refuse differing normalisations; now it converts."""
    torch.manual_seed(0)
    t_cfg = tiny_detector_cfg('faster_rcnn', base_channels=16,
                              neck_channels=32)
    s_cfg = tiny_detector_cfg('fcos', neck_channels=32)  # caffe-style
    model = distiller('GDetKD', s_cfg, t_cfg,
                      save_state(build(t_cfg)))
    assert not model.teacher_shares_preprocessing
    inputs, samples = preprocess(model.data_preprocessor, raw_batch())
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_gdetkd_sgfi'])
