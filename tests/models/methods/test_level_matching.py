"""Feature methods pair neck levels by stride: a Faster R-CNN teacher
(P2-P6) teaches a RetinaNet student (P3-P7) on P3-P6."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.detectors.pair_checks import match_levels
from sea_kd.models.losses import PKDLoss

from ...conftest import build, make_batch, tiny_detector_cfg


@pytest.fixture
def hetero(save_state):
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('retinanet', base_channels=8, neck_channels=32)
    t_cfg = tiny_detector_cfg('faster_rcnn', base_channels=16,
                              neck_channels=64)
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, 'faster.pth'), teacher


def test_levels_pair_by_stride(hetero):
    student, teacher = build(hetero[0]), hetero[3]
    pairs, unmatched = match_levels(student, teacher)
    # student P3..P7 (strides 8..128), teacher P2..P6 (4..64)
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert unmatched == [4]
    assert match_levels(student, teacher, [1, 4]) == ([(1, 2)], [4])
    # same strides: by stride is by index
    same = build(tiny_detector_cfg('retinanet'))
    assert match_levels(student, same)[0] == [(i, i)
                                                       for i in range(5)]


def test_pkd_on_a_faster_to_retinanet_pair(hetero):
    s_cfg, t_cfg, ckpt, teacher = hetero
    model = MODELS.build(dict(
        type='Distiller', student=s_cfg, teacher=t_cfg, teacher_ckpt=ckpt,
        methods=[dict(type='PKD', adapter=dict(type='ConvAdapter'),
                      loss_feat=dict(type='PKDLoss', loss_weight=1.0))]))
    model.init_weights()
    method = model.methods['pkd']
    inputs, samples = make_batch(model, shapes=[(3, 128, 128)] * 2)
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        s = model.student.extract_feat(inputs)
        t = teacher.eval().extract_feat(inputs)
        expected = PKDLoss()([method.adapters[k](s[i]) for k, i in
                              enumerate((0, 1, 2, 3))],
                             [t[j] for j in (1, 2, 3, 4)])
    assert losses['loss_pkd_feat'].item() == pytest.approx(
        expected.item(), rel=1e-4)


def test_index_matching_refuses_other_strides(hetero):
    s_cfg, t_cfg, ckpt, _ = hetero
    with pytest.raises(ValueError, match='different strides'):
        MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                          teacher_ckpt=ckpt,
                          methods=[dict(type='FeatureImitation',
                                        level_matching='index')]))
    with pytest.raises(ValueError, match='level_matching must be one of'):
        MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                          teacher_ckpt=ckpt,
                          methods=[dict(type='FeatureImitation',
                                        level_matching='nearest')]))


@pytest.mark.parametrize('method', ['MGD', 'FGD'])
def test_mgd_and_fgd_pair_levels_by_stride_or_refuse_by_index(
        method, save_state):
    """A Faster R-CNN student (P2-P6) learns from a RetinaNet teacher
    (P3-P7) on the levels of equal stride; their modules are built for
    the paired teacher level; ``level_matching='index'`` refuses."""
    teacher_cfg = tiny_detector_cfg('retinanet', neck_channels=48)
    ckpt = save_state(build(teacher_cfg), 'teacher.pth')
    student_cfg = tiny_detector_cfg('faster_rcnn')

    def distiller(**options):
        return MODELS.build(dict(
            type='Distiller', teacher=teacher_cfg, teacher_ckpt=ckpt,
            student=student_cfg, methods=[dict(type=method, **options)]))

    with pytest.raises(ValueError, match='different strides'):
        distiller(level_matching='index')
    with pytest.raises(ValueError, match='level_matching must be one of'):
        distiller(level_matching='nearest')
    model = distiller()
    part = model.methods[method.lower()]
    assert part.level_pairs == [(1, 0), (2, 1), (3, 2), (4, 3)]
    assert part.levels == [1, 2, 3, 4]
    modules = part.generators if method == 'MGD' else part.level_modules
    assert len(modules) == 4
    inputs, samples = make_batch(model.student)
    losses = model.loss(inputs, samples)
    prefix = f'loss_{method.lower()}'
    terms = [v for k, v in losses.items() if k.startswith(prefix)]
    assert terms and all(torch.isfinite(v) for v in terms)
    sum(terms).backward()

