"""tools/check_pair.py on the demo pair, as a user runs it."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from .helpers import DEMO, REPO, data_options, python, run_tool

pytestmark = pytest.mark.slow

FI_CONFIG = osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py')
# the tool imports this checkout's sea_kd, whatever is installed
ENV = dict(PYTHONPATH=REPO)


def test_report_of_the_demo_pair_has_the_configs_numbers(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    out_json = tmp_path / 'report.json'
    out = run_tool(python(
        'tools/check_pair.py', FI_CONFIG, '--num-val-images', '4',
        '--device', 'cpu', '--out', out_json, '--cfg-options',
        *data_options(synthetic_root),
        f'model.teacher_ckpt={retina_teacher_ckpt}'), env=ENV)
    assert f'Pair check of {FI_CONFIG}' in out.stdout
    report = json.loads(out_json.read_text())

    cfg = Config.fromfile(FI_CONFIG)
    teacher = Config.fromfile(osp.join(DEMO, 'retinanet_r18_synthetic.py'))
    student = Config.fromfile(
        osp.join(DEMO, 'retinanet_r18-w16_synthetic.py'))
    classes = list(cfg.train_dataloader.dataset.metainfo.classes)
    assert report['classes'] == dict(
        dataset=classes, num_dataset=len(classes),
        teacher=teacher.model.bbox_head.num_classes,
        student=student.model.bbox_head.num_classes,
        teacher_checkpoint=classes)
    for role, model in (('teacher', teacher.model),
                        ('student', student.model)):
        neck = report[role]['neck']
        assert len(neck) == model.neck.num_outs
        assert [r['channels'] for r in neck] == \
            [model.neck.out_channels] * model.neck.num_outs
        assert [r['stride'] for r in neck] == [
            [s, s] for s in model.bbox_head.anchor_generator.strides]
        priors = report[role]['dense_priors']['bbox_head']
        generator = model.bbox_head.anchor_generator
        assert priors['octave_base_scale'] == generator.octave_base_scale
        assert priors['priors_per_location'] == [
            len(generator.ratios) * generator.scales_per_octave] * 5
    (adapters, _) = report['distillation_modules']
    assert [(x['in_channels'], x['out_channels']) for x in
            adapters['layers']] == [(student.model.neck.out_channels,
                                     teacher.model.neck.out_channels)] * 5
    assert set(report['losses']['distillation']) == {'loss_fi_feat'}
    assert report['teacher_eval']['images'] == 4
    assert report['distiller']['teacher_ckpt'] == retina_teacher_ckpt
    assert 'adapters.0.conv: Conv2d 64 -> 128' in out.stdout
    assert 'teacher checkpoint trained on: the same classes' in out.stdout


def test_mismatched_pair_exits_non_zero_with_the_reason(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    student = tmp_path / 'student_3_classes.py'
    student.write_text(
        f"_base_ = '{DEMO}/retinanet_r18-w16_synthetic.py'\n"
        'model = dict(bbox_head=dict(num_classes=3))\n')
    out_json = tmp_path / 'report.json'
    out = run_tool(python(
        'tools/check_pair.py', FI_CONFIG, '--num-val-images', '0',
        '--device', 'cpu', '--out', out_json, '--cfg-options',
        *data_options(synthetic_root), f'model.student={student}',
        f'model.teacher_ckpt={retina_teacher_ckpt}'), env=ENV, check=False)
    assert out.returncode == 1, out.stdout[-3000:]
    assert f'Pair check FAILED (build) for {FI_CONFIG}' in out.stdout
    assert 'disagree on the number of classes: student has ' \
        'num_classes=3, teacher num_classes=6' in out.stdout
    assert not out_json.exists()
