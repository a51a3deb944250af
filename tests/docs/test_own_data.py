"""docs/own_data.md end to end: a COCO-format data set with other class
names (4 renamed classes, the other two dropped), the own-data configs, and
the page's commands with 2-iteration schedules (subprocesses)."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco

from ..conftest import REPO
from ..tools.helpers import data_options, python, run_tool, short_run

pytestmark = pytest.mark.slow

OWN = osp.join(REPO, 'configs', 'own_data')
TEACHER = osp.join(OWN, 'retinanet_r18_my-dataset.py')
STUDENT = osp.join(OWN, 'retinanet_r18-w16_my-dataset.py')
FI = osp.join(OWN, 'fi_retinanet_r18_to_r18-w16_my-dataset.py')
RENAMED = {'circle': 'bolt', 'square': 'nut', 'triangle': 'washer',
           'ring': 'gear'}


def make_user_data_set(root) -> None:
    """Generated images whose annotation files name other classes."""
    generate_synthetic_coco(str(root), num_train=16, num_val=8, seed=5)
    for split in ('train', 'val'):
        path = osp.join(str(root), 'annotations', f'instances_{split}.json')
        with open(path) as f:
            coco = json.load(f)
        kept = {c['id'] for c in coco['categories'] if c['name'] in RENAMED}
        coco['categories'] = [dict(c, name=RENAMED[c['name']])
                              for c in coco['categories'] if c['id'] in kept]
        coco['annotations'] = [a for a in coco['annotations']
                               if a['category_id'] in kept]
        with open(path, 'w') as f:
            json.dump(coco, f)


def test_own_data_walkthrough(tmp_path):
    root = tmp_path / 'my_dataset'
    make_user_data_set(root)
    opts = [*data_options(str(root)), *short_run(2)] + [
        f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader',
                                         'test_dataloader')
        for key in ('num_workers=0', 'persistent_workers=False')]

    run_tool(python('tools/train.py', TEACHER, '--work-dir',
                    tmp_path / 'teacher', '--cfg-options', *opts))
    teacher_ckpt = tmp_path / 'teacher' / 'iter_2.pth'
    run_tool(python('tools/train.py', STUDENT, '--work-dir',
                    tmp_path / 'student', '--cfg-options', *opts))

    distill = [*opts, f'model.teacher_ckpt={teacher_ckpt}']
    report = run_tool(python('tools/check_pair.py', FI, '--num-val-images',
                             '4', '--cfg-options', *distill))
    assert ('Classes: data set 4 (bolt, nut, washer, gear); teacher head 4; '
            'student head 4') in report.stdout

    run_tool(python('tools/train.py', FI, '--work-dir', tmp_path / 'fi',
                    '--cfg-options', *distill))
    exported = tmp_path / 'student.pth'
    run_tool(python('tools/export_student.py', FI, tmp_path / 'fi' /
                    'iter_2.pth', exported))
    metrics = tmp_path / 'metrics.json'
    run_tool(python('tools/test.py', STUDENT, exported, '--work-dir',
                    tmp_path / 'test', '--metrics-out', metrics,
                    '--cfg-options', *opts))
    assert metrics.is_file()

    # section 7: a demo method on this pair and data set (--retarget)
    adl = osp.join(REPO, 'configs', 'demo',
                   'adl_retinanet_r18_to_r18-w16_synthetic.py')
    work = tmp_path / 'compare'
    out = run_tool(python('tools/compare.py', '--retarget', '--student',
                          STUDENT, '--teacher', TEACHER, '--teacher-ckpt',
                          teacher_ckpt, '--methods', adl, '--seeds', '0',
                          '--split', 'val', '--work-dir', work,
                          '--cfg-options', *opts))
    assert '[3/3]' in out.stdout
    name = osp.splitext(osp.basename(adl))[0]
    trained = Config.fromfile(work / name / 'seed0' / 'configs' / f'{name}.py')
    assert trained.model.student == STUDENT
    assert trained.model.teacher_ckpt == str(teacher_ckpt)
    assert tuple(trained.train_dataloader.dataset.metainfo.classes) == \
        tuple(RENAMED.values())


def test_page_names_the_tested_configs():
    with open(osp.join(REPO, 'docs', 'own_data.md')) as f:
        page = f.read()
    for path in (TEACHER, STUDENT, FI):
        assert osp.relpath(path, REPO) in page, path
    assert 'configs/_base_/datasets/my_dataset_detection.py' in page
