"""The teacher-evaluation helpers shared by the hook and check_pair."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from torch.nn import DataParallel

from sea_kd.engine import evaluate_teacher, prefix_metrics, unwrap_distiller

from ..conftest import build, make_batch, tiny_detector_cfg


@pytest.fixture
def distiller(save_state):
    torch.manual_seed(0)
    teacher_cfg = tiny_detector_cfg('retinanet', neck_channels=32)
    teacher_cfg.test_cfg.score_thr = 0.0
    ckpt = save_state(build(teacher_cfg), 'teacher.pth')
    model = MODELS.build(dict(
        type='Distiller', teacher=teacher_cfg, teacher_ckpt=ckpt,
        student=tiny_detector_cfg('retinanet', base_channels=4,
                                  neck_channels=16),
        methods=[dict(type='FeatureImitation')]))
    model.init_weights()
    return model.eval()


def test_predict_teacher_gives_the_teachers_own_predictions(distiller):
    inputs, samples = make_batch(distiller)
    got = distiller.predict_teacher(inputs, copy.deepcopy(samples))
    with torch.no_grad():
        expected = distiller.teacher.predict(inputs, copy.deepcopy(samples))
        student = distiller.predict(inputs, copy.deepcopy(samples))
    for g, e, s in zip(got, expected, student):
        assert len(g.pred_instances) > 0
        assert torch.equal(g.pred_instances.bboxes, e.pred_instances.bboxes)
        assert torch.equal(g.pred_instances.scores, e.pred_instances.scores)
        assert not torch.equal(g.pred_instances.scores,
                               s.pred_instances.scores)
    assert not any(p.requires_grad for p in distiller.teacher.parameters())


def test_unwrap_distiller_removes_wrappers_and_refuses_detectors(distiller):
    assert unwrap_distiller(DataParallel(distiller)) is distiller
    assert unwrap_distiller(distiller) is distiller
    with pytest.raises(TypeError, match='RetinaNet, not a sea_kd distiller'):
        unwrap_distiller(distiller.student)


def test_bad_num_batches_and_prefix_metrics(distiller):
    with pytest.raises(ValueError, match='positive int or None'):
        evaluate_teacher(distiller, [], None, num_batches=0)
    assert prefix_metrics({'coco/bbox_mAP': 0.5}) == {
        'teacher/coco/bbox_mAP': 0.5}
