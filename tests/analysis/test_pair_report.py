"""The pair report: numbers from the configs, the batch and the teacher."""
import json
import re

import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.analysis.pair_report import (PairCheckError, _fgd_attention_rows,
                                         _level_rows, attention_cover,
                                         build_pair_report, format_pair_report)
from sea_kd.analysis.synthetic_coco import SYNTHETIC_CLASSES

from ..conftest import build, tiny_detector_cfg
from ..engine.helpers import (IMG_SIZE, fi_distiller_cfg,
                              first_images_test_metrics, plain_test_metrics,
                              run_cfg, tiny_student_cfg, tiny_teacher_cfg)


@pytest.fixture(scope='module')
def fi_report(tiny_coco, tiny_teacher_ckpt, tmp_path_factory):
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt),
                  str(tmp_path_factory.mktemp('report')))
    return build_pair_report(cfg, num_val_images=6)


def test_classes_and_neck_levels_are_those_of_the_configs(fi_report):
    teacher, student = tiny_teacher_cfg(), tiny_student_cfg()
    assert fi_report['distiller']['type'] == 'Distiller'
    assert fi_report['distiller']['methods'] == [
        dict(name='fi', type='FeatureImitation')]
    assert fi_report['classes'] == dict(
        dataset=list(SYNTHETIC_CLASSES), num_dataset=6, teacher=6,
        student=6, teacher_checkpoint=list(SYNTHETIC_CLASSES))
    assert fi_report['batch'] == dict(size=4,
                                      input_shape=[IMG_SIZE, IMG_SIZE])
    for role, cfg in (('teacher', teacher), ('student', student)):
        neck = fi_report[role]['neck']
        assert len(neck) == cfg['neck']['num_outs'] == 5
        assert [r['channels'] for r in neck] == \
            [cfg['neck']['out_channels']] * 5
        strides = cfg['bbox_head']['anchor_generator']['strides']
        assert [r['stride'] for r in neck] == [[s, s] for s in strides]
        # sizes of the 64-px batch: 64 / stride, at least 1
        assert [r['size'] for r in neck] == [
            [max(1, IMG_SIZE // s)] * 2 for s in strides]
        priors = fi_report[role]['dense_priors']['bbox_head']
        assert priors['priors_per_location'] == [9] * 5
        assert priors['ratios'] == [0.5, 1.0, 2.0]
        assert priors['octave_base_scale'] == 2
        assert fi_report[role]['roi_extractors'] == {}
        assert fi_report[role]['params'] == sum(
            p.numel() for p in build(cfg).parameters())


def test_adapters_and_losses_are_reported(fi_report):
    (adapters, loss_feat) = fi_report['distillation_modules']
    assert adapters['name'] == 'adapters'
    assert [(x['name'], x['in_channels'], x['out_channels'], x['params'])
            for x in adapters['layers']] == [
                (f'adapters.{i}.conv', 16, 32, 16 * 32 + 32)
                for i in range(5)]
    assert adapters['params'] == 5 * (16 * 32 + 32)
    assert loss_feat['type'] == 'FeatureMSELoss'
    assert loss_feat['loss_weight'] == 0.01
    losses = fi_report['losses']
    assert set(losses['student']) == {'loss_cls', 'loss_bbox'}
    assert set(losses['distillation']) == {'loss_fi_feat'}
    assert losses['distillation']['loss_fi_feat'] > 0
    assert losses['total'] == pytest.approx(
        sum(losses['student'].values()) +
        losses['distillation']['loss_fi_feat'])
    assert fi_report['problems'] == [] and fi_report['warnings'] == []
    json.dumps(fi_report)  # what --out writes


def test_teacher_metrics_are_those_of_the_first_images(
        fi_report, tiny_coco, tiny_teacher_ckpt, tmp_path):
    plain = first_images_test_metrics(tiny_coco, tiny_teacher_ckpt,
                                      str(tmp_path), 6)
    assert plain['coco/bbox_mAP'] > 0
    assert fi_report['teacher_eval'] == dict(images=6, metrics=plain)


def test_text_report_shows_the_numbers(fi_report):
    text = format_pair_report(fi_report)
    assert 'Distiller: Distiller (methods fi (FeatureImitation);' in text
    assert 'data set 6 (circle, square, triangle, ring, cross, star); ' \
        'teacher head 6; student head 6' in text
    # level, teacher stride, channels, size, student stride, channels, size
    assert re.search(r'^ +0 +8 +32 +8x8 +8 +16 +8x8$', text, re.M)
    assert re.search(r'^ +4 +128 +32 +1x1 +128 +16 +1x1$', text, re.M)
    assert 'adapters.4.conv: Conv2d 16 -> 32, 544 parameters' in text
    assert 'Teacher on the first 6 validation images: coco/bbox_mAP ' \
        f'{fi_report["teacher_eval"]["metrics"]["coco/bbox_mAP"]:.3f}' in text
    assert 'No problems found.' in text


def test_two_stage_pair_reports_rpn_priors_and_roi_extractors(
        tiny_coco, save_state, tmp_path):
    teacher = tiny_detector_cfg('faster_rcnn', num_classes=6,
                                neck_channels=32)
    student = tiny_detector_cfg('faster_rcnn', num_classes=6,
                                base_channels=4, neck_channels=16)
    torch.manual_seed(0)
    ckpt = save_state(build(teacher), 'frcnn.pth')
    model = dict(type='Distiller', teacher=teacher, student=student,
                 teacher_ckpt=ckpt, methods=[dict(type='SEA')])
    report = build_pair_report(run_cfg(tiny_coco, model, str(tmp_path)),
                               num_val_images=0)
    assert report['teacher_eval'] is None
    for role, channels in (('teacher', 32), ('student', 16)):
        summary = report[role]
        assert [r['stride'] for r in summary['neck']] == [
            [s, s] for s in (4, 8, 16, 32, 64)]
        assert summary['dense_priors']['rpn_head']['strides'] == [
            [s, s] for s in (4, 8, 16, 32, 64)]
        assert summary['dense_priors']['rpn_head']['priors_per_location'] \
            == [3] * 5
        assert summary['roi_extractors']['bbox_roi_extractor'] == dict(
            type='SingleRoIExtractor', roi_layer='RoIAlign',
            output_size=[7, 7], featmap_strides=[4, 8, 16, 32],
            out_channels=channels)
    assert set(report['losses']['distillation']) == {'loss_sea_rel'}
    assert {'loss_rpn_cls', 'loss_cls'} <= set(report['losses']['student'])
    assert 'RoI, teacher bbox_roi_extractor: RoIAlign 7x7' in \
        format_pair_report(report)


def _pair_with_classes(num_classes, save_state):
    teacher = tiny_detector_cfg('retinanet', num_classes=num_classes)
    student = tiny_detector_cfg('retinanet', num_classes=num_classes,
                                base_channels=4)
    ckpt = save_state(build(teacher), f'teacher{num_classes}.pth')
    return dict(type='Distiller', teacher=teacher, student=student,
                teacher_ckpt=ckpt, methods=[dict(type='FeatureImitation')])


def test_more_head_classes_than_the_data_set_are_a_problem(
        tiny_coco, save_state, tmp_path):
    model = _pair_with_classes(8, save_state)
    report = build_pair_report(run_cfg(tiny_coco, model, str(tmp_path)),
                               num_val_images=0)
    assert report['problems'] == [
        f'The {role} head predicts 8 classes but the training set has 6 '
        '(circle, square, triangle, ring, cross, star); set num_classes=6 '
        f'in the {role} config (and retrain a teacher trained on another '
        'label set).' for role in ('teacher', 'student')]
    assert 'PROBLEMS:' in format_pair_report(report)


def test_fewer_head_classes_than_the_data_set_stop_before_the_batch(
        tiny_coco, save_state, tmp_path):
    model = _pair_with_classes(3, save_state)
    with pytest.raises(PairCheckError) as err:
        build_pair_report(run_cfg(tiny_coco, model, str(tmp_path)),
                          num_val_images=0)
    assert err.value.stage == 'classes'
    assert 'The student head predicts 3 classes but the training set has ' \
        '6' in str(err.value)


def test_build_time_check_failure_is_a_pair_check_error(
        tiny_coco, tiny_teacher_ckpt, tmp_path):
    student = tiny_student_cfg()
    student['bbox_head']['num_classes'] = 3
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt, student),
                  str(tmp_path))
    with pytest.raises(PairCheckError) as err:
        build_pair_report(cfg, num_val_images=0)
    assert err.value.stage == 'build'
    assert 'disagree on the number of classes' in str(err.value)


def test_plain_detector_config_is_refused(tiny_coco, tmp_path):
    cfg = run_cfg(tiny_coco, tiny_teacher_cfg(), str(tmp_path))
    with pytest.raises(PairCheckError, match='not a sea_kd distiller'):
        build_pair_report(cfg, num_val_images=0)


def test_more_images_than_the_validation_set_evaluate_all_of_it(
        tiny_coco, tiny_teacher_ckpt, tmp_path):
    cfg = run_cfg(tiny_coco, fi_distiller_cfg(tiny_teacher_ckpt),
                  str(tmp_path / 'report'))
    report = build_pair_report(cfg, num_val_images=100)
    plain = plain_test_metrics(tiny_coco, tiny_teacher_cfg(),
                               tiny_teacher_ckpt, str(tmp_path / 'plain'))
    assert report['teacher_eval'] == dict(images=16, metrics=plain)


def test_attention_cover_by_hand():
    attention = torch.tensor([[0.5, 0.3, 0.1, 0.1],    # 0.9 with three
                              [0.1, 0.1, 0.3, 0.5],    # the same, unsorted
                              [1.0, 0.0, 0.0, 0.0],    # one holds it all
                              [0.25, 0.25, 0.25, 0.25],  # 0.75 with three
                              [2.0, 0.0, 2.0, 0.0],    # unnormalised rows
                              # 0.6 + 0.3 is 0.8999999999999999 in floats:
                              # two entries, not three
                              [0.6, 0.3, 0.1, 0.0]])
    assert attention_cover(attention).tolist() == [3, 3, 1, 4, 2, 2]
    assert attention_cover(attention, share=0.5).tolist() == [
        1, 1, 1, 2, 1, 1]


def test_level_rows_report_the_mean_absolute_activation():
    detector = build(tiny_student_cfg())
    feats = [torch.tensor([-3.0, 1.0]).repeat(2, 8, 4, 2)
             for _ in range(5)]   # |F| is 3 or 1, half each: mean 2
    feats[1] = torch.zeros(2, 8, 2, 2)
    rows = _level_rows(detector, feats, (64, 64))
    assert [r['mean_abs'] for r in rows] == [2.0, 0.0, 2.0, 2.0, 2.0]


def test_fgd_attention_concentration_is_reported(tiny_coco,
                                                 tiny_teacher_ckpt,
                                                 tmp_path):
    model = dict(type='Distiller', student=tiny_student_cfg(),
                 teacher=tiny_teacher_cfg(), teacher_ckpt=tiny_teacher_ckpt,
                 methods=[dict(type='FGD', temperature=0.5),
                          dict(type='FGD', name='fgdrel', temperature=0.5,
                               relative_temperature=True)])
    report = build_pair_report(run_cfg(tiny_coco, model, str(tmp_path)),
                               num_val_images=0)
    absolute, relative = report['fgd_attention']
    assert (absolute['method'], absolute['relative']) == ('fgd', False)
    assert (relative['method'], relative['relative']) == ('fgdrel', True)
    channels = [r['channels'] for r in report['teacher']['neck']]
    for row in (absolute, relative):
        assert [x['level'] for x in row['levels']] == list(range(5))
        for x, c in zip(row['levels'], channels):
            assert 1 <= x['channels'] <= c
            assert x['channel_share'] == pytest.approx(x['channels'] / c)
            assert 0 < x['position_share'] <= 1
    text = format_pair_report(report)
    assert 'fgd attention on the teacher (T 0.5, absolute), share holding ' \
        '90 % of it by teacher level (0, 1, 2, 3, 4): channels ' in text
    assert 'fgdrel attention on the teacher (T 0.5, relative)' in text
    assert re.search(r'^  mean \|F\|, teacher: [0-9.e+-]+(, [0-9.e+-]+){4}$',
                     text, re.M)


def test_fgd_attention_rows_by_hand(tiny_teacher_ckpt):
    model = MODELS.build(dict(
        type='Distiller', student=tiny_student_cfg(),
        teacher=tiny_teacher_cfg(), teacher_ckpt=tiny_teacher_ckpt,
        methods=[dict(type='FGD', levels=[1, 3], temperature=0.5),
                 dict(type='FGD', name='fgdrel', levels=[1, 3],
                      temperature=0.5, relative_temperature=True)]))
    c = tiny_teacher_cfg()['neck']['out_channels']
    assert c == 32
    base = torch.ones(2, c, 4, 4)
    base[:, 0] = 2.0       # one channel twice the others, same everywhere
    feats = [torch.zeros(2, c, 4, 4) for _ in range(5)]
    feats[1], feats[3] = 10 * base, base
    absolute, relative = _fgd_attention_rows(model, feats)
    assert [x['level'] for x in absolute['levels']] == [1, 3]
    assert [x['student_level'] for x in absolute['levels']] == [1, 3]
    # A^C is softmax(mean_hw |F| / T) over the channels. Absolute T 0.5 at
    # level 1: 40 against 20, so the first channel holds all of it (1
    # channel). At level 3 (and relative at either level, where |F| is
    # divided by its mean 33/32, resp. 330/32): logits differ by 2 (resp.
    # 2·32/33 = 1.94), the first channel weighs e^2 = 7.39 (e^1.94 = 6.95)
    # against 31 others of weight 1: 90 % of 38.39 (37.95) is 34.55
    # (34.16), reached with the first and 28 others: 29 channels.
    assert [x['channels'] for x in absolute['levels']] == [1, 29]
    assert [x['channels'] for x in relative['levels']] == [29, 29]
    assert absolute['levels'][0]['channel_share'] == pytest.approx(1 / 32)
    assert relative['levels'][0]['channel_share'] == pytest.approx(29 / 32)
    # A^S is uniform over the 16 positions: 90 % needs 15 of them
    for row in (absolute, relative):
        assert [x['position_share'] for x in row['levels']] == \
            pytest.approx([15 / 16] * 2)
