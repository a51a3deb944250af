"""SAD with online pseudo labels: unlabeled images get teacher detections."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

from ...conftest import build, make_batch, tiny_detector_cfg


def confident_retina_pair(save_state):
    """Student and teacher configs, the teacher's checkpoint and the teacher,
    whose random initialisation already gives detections."""
    torch.manual_seed(0)
    s_cfg = tiny_detector_cfg('retinanet')
    t_cfg = tiny_detector_cfg('retinanet', base_channels=16)
    # make the random teacher confident enough to produce detections
    t_cfg.bbox_head.init_cfg = dict(
        type='Normal', layer='Conv2d', std=0.01,
        override=dict(type='Normal', name='retina_cls', std=0.01,
                      bias_prob=0.5))
    teacher = build(t_cfg)
    return s_cfg, t_cfg, save_state(teacher, 'teacher.pth'), teacher


@pytest.fixture
def pair(save_state):
    return confident_retina_pair(save_state)


def _mark_unlabeled(samples, index):
    samples[index].set_metainfo(dict(unlabeled=True))
    samples[index].gt_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))


def test_unlabeled_image_trains_on_teacher_detections(pair):
    s_cfg, t_cfg, ckpt, teacher = pair
    model = MODELS.build(dict(type='Distiller', student=s_cfg,
                              teacher=t_cfg, teacher_ckpt=ckpt,
                              methods=[dict(type='ADL',
                                            pseudo_label=dict(
                                                score_thr=0.3))]))
    model.init_weights()
    inputs, samples = make_batch(model)
    _mark_unlabeled(samples, 1)
    labeled_boxes = samples[0].gt_instances.bboxes.clone()

    with torch.no_grad():
        expected = teacher.eval().predict(inputs, copy.deepcopy(samples),
                                          rescale=False)[1].pred_instances
    expected = expected[expected.scores >= 0.3]
    assert len(expected) > 0

    losses = model.loss(inputs, samples)
    pseudo = samples[1].gt_instances
    assert torch.allclose(pseudo.bboxes, expected.bboxes, atol=1e-4)
    assert torch.equal(pseudo.labels, expected.labels)
    assert torch.equal(samples[0].gt_instances.bboxes, labeled_boxes)
    assert all(torch.isfinite(v).all() for k, v in losses.items()
               if k.startswith('loss') and torch.is_tensor(v))
    assert losses['loss_adl_cls'] > 0


def test_unlabeled_images_without_pseudo_labels_are_refused(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    for method in (dict(type='ADL'), dict(type='FeatureImitation')):
        model = MODELS.build(dict(type='Distiller', student=s_cfg,
                                  teacher=t_cfg, teacher_ckpt=ckpt,
                                  methods=[method]))
        inputs, samples = make_batch(model)
        _mark_unlabeled(samples, 0)
        with pytest.raises(ValueError, match='unlabeled images'):
            model.loss(inputs, samples)


def test_pseudo_label_option_is_checked(pair):
    s_cfg, t_cfg, ckpt, _ = pair
    with pytest.raises(ValueError, match='only `score_thr`'):
        MODELS.build(dict(type='Distiller', student=s_cfg, teacher=t_cfg,
                          teacher_ckpt=ckpt,
                          methods=[dict(type='ADL',
                                        pseudo_label=dict(thr=0.5))]))
