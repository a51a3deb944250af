"""``tools/compare.py --retarget``: every method config run on the
comparison's own student, teacher and data set, without a config each.

No training: compare.py's subprocesses are replaced by the fake tools of
``tests/security/test_compare_reuse.py``, which record the config each
run would train with.
"""
import json
import sys
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

from ..security.test_compare_reuse import FakeTools, load_tool

compare = load_tool('compare')

DETECTOR = """
model = dict(type='RetinaNet', depth={depth}, num_classes={classes})
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
randomness = dict(seed=None)
train_dataloader = dict(batch_size=2, dataset=dict(
    type='CocoDataset', data_root='{root}/', metainfo=dict(classes={names}),
    ann_file='annotations/instances_train.json',
    data_prefix=dict(img='train/'){extra}))
test_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root='{root}/', metainfo=dict(classes={names}),
    ann_file='annotations/instances_val.json', data_prefix=dict(img='val/')))
val_dataloader = test_dataloader
test_evaluator = dict(type='CocoMetric', metric='bbox',
                      ann_file='{root}/annotations/instances_val.json')
val_evaluator = test_evaluator
"""
MINE = dict(root='mydata', classes=3, names=('a', 'b', 'c'), extra='')
DEMO = dict(root='demodata', classes=6, names=tuple('uvwxyz'),
            extra=', filter_cfg=dict(filter_empty_gt=True)')
# a demo method config: its own pair (6 classes) and its own data set
METHOD = """
_base_ = './demo_student.py'
model = dict(_delete_=True, type='Distiller',
             student='{{fileDirname}}/demo_student.py',
             teacher='{{fileDirname}}/demo_teacher.py',
             teacher_ckpt='{{fileDirname}}/demo_teacher.pth',
             methods=[dict(type='FeatureImitation')])
"""


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')  # train.parse_args sets it
    cfgs = tmp_path / 'configs'
    cfgs.mkdir()
    (cfgs / 'student.py').write_text(DETECTOR.format(depth=18, **MINE))
    (cfgs / 'teacher.py').write_text(DETECTOR.format(depth=50, **MINE))
    (cfgs / 'demo_student.py').write_text(DETECTOR.format(depth=18, **DEMO))
    (cfgs / 'demo_teacher.py').write_text(DETECTOR.format(depth=50, **DEMO))
    (cfgs / 'fi.py').write_text(METHOD)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, ckpt)
    fake = FakeTools()
    monkeypatch.setattr(compare, '_call', fake)

    (cfgs / 'fi2.py').write_text(METHOD)

    def run(*extra, teacher=True, methods=('fi', 'fi2')) -> None:
        argv = ['tools/compare.py', '--student', cfgs / 'student.py',
                '--methods', *[cfgs / f'{m}.py' for m in methods],
                '--seeds', '0-1',
                '--work-dir', tmp_path / 'cmp', *extra]
        if teacher:
            argv += ['--teacher', cfgs / 'teacher.py',
                     '--teacher-ckpt', ckpt]
        with mock.patch.object(sys, 'argv', [str(a) for a in argv]):
            compare.main()

    return SimpleNamespace(cfgs=cfgs, ckpt=ckpt, fake=fake, run=run,
                           work=tmp_path / 'cmp')


def test_methods_train_on_the_given_pair_and_the_students_data(setup):
    setup.run('--retarget')
    for seed in (0, 1):
        student = setup.fake.train_cfg(f'student seed {seed}')
        # every method and seed: mmengine's merge consumes `_delete_`, so a
        # shared option dict would replace the data of the first run only
        for method in ('fi', 'fi2'):
            cfg = setup.fake.train_cfg(f'{method} seed {seed}')
            assert cfg.model.student == str(setup.cfgs / 'student.py')
            assert cfg.model.teacher == str(setup.cfgs / 'teacher.py')
            assert cfg.model.teacher_ckpt == str(setup.ckpt)
            for key in compare.RETARGETED:
                # replaced whole: nothing of the method's own data is left
                assert cfg.get(key) == student.get(key), (method, key)
            assert 'filter_cfg' not in cfg.train_dataloader.dataset
            assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == \
                ('a', 'b', 'c')


def test_a_student_without_validation_gives_methods_none(setup):
    path = setup.cfgs / 'student.py'
    path.write_text(path.read_text() + 'val_dataloader = None\n'
                    'val_evaluator = None\nval_cfg = None\n')
    setup.run('--retarget', methods=('fi',))
    cfg = setup.fake.train_cfg('fi seed 0')
    assert cfg.val_dataloader is None and cfg.val_evaluator is None
    assert cfg.val_cfg is None


def test_a_method_config_without_teacher_is_refused(setup):
    (setup.cfgs / 'plain.py').write_text(DETECTOR.format(depth=18, **DEMO))
    with pytest.raises(SystemExit, match='names no teacher'):
        setup.run('--retarget', methods=('plain',))
    assert setup.fake.calls == []


def test_without_retarget_methods_keep_their_own_pair_and_data(setup):
    setup.run()
    cfg = setup.fake.train_cfg('fi seed 0')
    assert cfg.model.student == str(setup.cfgs / 'demo_student.py')
    assert 'filter_cfg' in cfg.train_dataloader.dataset
    assert cfg.train_dataloader.dataset.data_root == 'demodata/'


def test_retarget_is_recorded_and_a_run_without_it_is_refused(setup):
    setup.run('--retarget')
    record = json.loads((setup.work / 'fi' / 'seed0' / 'run.json')
                        .read_text())
    assert len(record['cfg_options']['--retarget']) == 64
    student = json.loads((setup.work / 'student' / 'seed0' / 'run.json')
                         .read_text())
    assert student['cfg_options'] == {}  # the student is not retargeted
    with pytest.raises(SystemExit) as info:
        setup.run()
    assert str(setup.work / 'fi' / 'seed0') in str(info.value)
    assert '--retarget' in str(info.value)


def test_an_edited_data_set_of_the_student_is_refused(setup):
    setup.run('--retarget')
    path = setup.cfgs / 'student.py'
    path.write_text(path.read_text().replace('batch_size=2', 'batch_size=4'))
    with pytest.raises(SystemExit) as info:
        setup.run('--retarget')
    assert str(setup.work / 'fi' / 'seed0') in str(info.value)


def test_retarget_without_teacher_names_what_to_add(setup):
    with pytest.raises(SystemExit, match='--teacher and --teacher-ckpt'):
        setup.run('--retarget', teacher=False)
    assert setup.fake.calls == []
