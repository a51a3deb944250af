"""``tools/compare.py`` reusing finished runs, as a careless user meets it.

A run dir is reused only with the settings that made it (config,
``--cfg-options``, seed, teacher checkpoint), only while its final checkpoint
is intact, and a copied work dir never resumes from the original's
checkpoint; damaged metrics files and misspelt ``--metric`` are errors; a
teacher checkpoint path with spaces and commas reaches training intact.

No training: compare.py's ``_call`` (its subprocesses) is replaced by
:class:`FakeTools`, which reads a train command with ``tools/train.py``'s own
parser and ``build_cfg`` (so it sees the config train.py would train and the
checkpoint it would resume from) and writes tiny checkpoints; a test command
writes a metrics file.
"""
import hashlib
import importlib.util
import json
import os.path as osp
import re
import shutil
import sys
from types import SimpleNamespace
from typing import List, Optional
from unittest import mock

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name: str):
    """A script of ``tools/`` as a module."""
    spec = importlib.util.spec_from_file_location(
        f'_compare_reuse_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare = load_tool('compare')
train = load_tool('train')

DETECTOR = """
model = dict(type='RetinaNet', depth={depth})
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
randomness = dict(seed=None)
test_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root='data/',
    ann_file='annotations/instances_val.json', data_prefix=dict(img='val/')))
test_evaluator = dict(type='CocoMetric', metric='bbox',
                      ann_file='data/annotations/instances_val.json')
"""
DISTILLER = """
_base_ = './student.py'
model = dict(_delete_=True, type='FeatureImitationDistiller',
             student='{{fileDirname}}/student.py',
             teacher='{{fileDirname}}/teacher.py',
             teacher_ckpt='{{fileDirname}}/no_teacher_here.pth')
"""
METRICS = {'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.5}


class FakeTools:
    """Stands in for ``tools/train.py`` and ``tools/test.py``.

    Attributes:
        calls: ``(stage, run label, train config or test command)``.
        metrics: What a test writes.
        stop_at: Stop training after this iteration (an interruption).
    """

    def __init__(self, metrics: Optional[dict] = None):
        self.calls: List[tuple] = []
        self.metrics = METRICS if metrics is None else metrics
        self.stop_at: Optional[int] = None

    def __call__(self, cmd: list, run, stage: str, env: dict,
                 **progress) -> None:
        if stage == 'test':
            self.calls.append(('test', run.label(), cmd))
            with open(cmd[cmd.index('--metrics-out') + 1], 'w') as f:
                json.dump(self.metrics, f)
            return
        with mock.patch.object(sys, 'argv', cmd[1:]):
            cfg = train.build_cfg(train.parse_args())
        self.calls.append(('train', run.label(), cfg))
        start = int(re.findall(r'\d+', osp.basename(cfg.load_from))[0]) \
            if cfg.get('resume') and cfg.get('load_from') else 0
        for it in range(start + 1, cfg.train_cfg.max_iters + 1):
            if self.stop_at is not None and it > self.stop_at:
                raise RuntimeError(f'train of {run.label()} interrupted')
            path = osp.join(cfg.work_dir, f'iter_{it}.pth')
            torch.save({'meta': {'iter': it}, 'state_dict': {}}, path)
            with open(osp.join(cfg.work_dir, 'last_checkpoint'), 'w') as f:
                f.write(path)

    def stages(self) -> List[tuple]:
        return [(stage, label) for stage, label, _ in self.calls]

    def train_cfg(self, label: str):
        return next(cfg for stage, name, cfg in self.calls
                    if stage == 'train' and name == label)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Three configs (student, teacher, feature imitation), a teacher
    checkpoint, the fake tools and ``run(*extra args, work=...)``, which runs
    compare.py's ``main`` with seed 0 and returns what it printed."""
    monkeypatch.setenv('LOCAL_RANK', '0')  # train.parse_args sets it
    cfgs = tmp_path / 'configs'
    cfgs.mkdir()
    (cfgs / 'student.py').write_text(DETECTOR.format(depth=18))
    (cfgs / 'teacher.py').write_text(DETECTOR.format(depth=50))
    (cfgs / 'fi.py').write_text(DISTILLER)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, ckpt)
    fake = FakeTools()
    monkeypatch.setattr(compare, '_call', fake)

    def run(*extra, work=tmp_path / 'cmp', teacher_ckpt=ckpt) -> None:
        argv = ['tools/compare.py', '--student', cfgs / 'student.py',
                '--methods', cfgs / 'fi.py', '--teacher',
                cfgs / 'teacher.py', '--teacher-ckpt', teacher_ckpt,
                '--seeds', '0', '--work-dir', work, *extra]
        with mock.patch.object(sys, 'argv', [str(a) for a in argv]):
            compare.main()

    return SimpleNamespace(cfgs=cfgs, ckpt=ckpt, fake=fake, run=run,
                           work=tmp_path / 'cmp')


def refusal(setup, *extra, **kwargs) -> str:
    """The message compare.py exits with; nothing may have run."""
    before = len(setup.fake.calls)
    with pytest.raises(SystemExit) as info:
        setup.run(*extra, **kwargs)
    assert len(setup.fake.calls) == before, 'it ran before refusing'
    return str(info.value)


# 1. what defines a run is recorded and checked


def test_run_json_records_config_options_seed_and_teacher_sha256(setup):
    setup.run('--cfg-options', 'train_cfg.val_interval=2')
    record = json.loads((setup.work / 'fi' / 'seed0' / 'run.json')
                        .read_text())
    assert record['cfg_options'] == {'train_cfg.val_interval': 2}
    assert record['seed'] == 0
    assert record['teacher'] == hashlib.sha256(
        setup.ckpt.read_bytes()).hexdigest()
    assert re.fullmatch('[0-9a-f]{64}', record['config_sha256'])
    teacher = json.loads((setup.work / 'teacher' / 'run.json').read_text())
    assert teacher['seed'] is None and teacher['teacher'] == record['teacher']


def test_changed_cfg_options_are_refused_naming_run_dir_and_option(setup):
    setup.run('--cfg-options', 'train_cfg.val_interval=2')
    message = refusal(setup, '--cfg-options', 'train_cfg.val_interval=1')
    for run_dir in ('student/seed0', 'fi/seed0', 'teacher'):
        assert str(setup.work / run_dir) + ':' in message
    assert '--cfg-options differ: `train_cfg.val_interval` was `2`, now ' \
        '`1`' in message
    assert 'new --work-dir' in message and 'delete the run dirs' in message


def test_changed_teacher_checkpoint_contents_are_refused(setup):
    setup.run()
    torch.save({'state_dict': {'w': torch.zeros(2)}}, setup.ckpt)  # retrained
    message = refusal(setup)
    assert 'the teacher checkpoint differs' in message
    assert f'{setup.work / "fi" / "seed0"}:' in message
    assert f'{setup.work / "teacher"}:' in message
    assert f'{setup.work / "student" / "seed0"}:' not in message


def test_edited_student_config_is_refused_for_student_and_distiller(setup):
    setup.run()
    (setup.cfgs / 'student.py').write_text(DETECTOR.format(depth=34))
    message = refusal(setup)
    # the distiller names student.py: its runs are stale too
    for run_dir in ('student/seed0', 'fi/seed0'):
        assert f'{setup.work / run_dir}: the config differs' in message
    assert f'{setup.work / "teacher"}:' not in message


def test_an_alias_config_rewritten_as_a_distiller_keeps_its_runs(setup):
    """The shipped configs moved from the one-method aliases to
    Distiller(methods=[...]): the same config in the new form reuses the
    runs of the old one; another method option does not."""
    setup.run()
    trained = len(setup.fake.calls)
    (setup.cfgs / 'fi.py').write_text(DISTILLER.replace(
        "type='FeatureImitationDistiller',",
        "type='Distiller', methods=[dict(type='FeatureImitation')],"))
    setup.run()
    assert [c for c in setup.fake.calls[trained:] if c[0] == 'train'] == []
    (setup.cfgs / 'fi.py').write_text(DISTILLER.replace(
        "type='FeatureImitationDistiller',",
        "type='Distiller', methods=[dict(type='FeatureImitation', "
        "adapter=None)],"))
    message = refusal(setup)
    assert f'{setup.work / "fi" / "seed0"}: the config differs' in message


def test_results_without_run_json_are_refused(setup):
    legacy = setup.work / 'student' / 'seed0'
    legacy.mkdir(parents=True)
    (legacy / 'metrics.json').write_text(json.dumps(METRICS))
    message = refusal(setup)
    assert f'{legacy}: it has results but no run.json' in message
    assert '--adopt-unrecorded' in message


def test_adopt_unrecorded_records_older_results_then_checks_them(setup):
    setup.run()
    for record in setup.work.rglob('run.json'):  # as an older compare.py
        record.unlink()
    assert 'no run.json' in refusal(setup)
    setup.fake.calls.clear()
    setup.run('--adopt-unrecorded')
    assert setup.fake.calls == []  # reused, nothing trained or evaluated
    assert len(list(setup.work.rglob('run.json'))) == 3
    assert '--cfg-options differ' in refusal(
        setup, '--cfg-options', 'train_cfg.val_interval=1')


def test_a_run_trained_on_val_is_evaluated_on_test_without_training(setup):
    setup.run('--split', 'val')
    setup.fake.calls.clear()
    setup.run('--split', 'test')
    assert setup.fake.stages() == [('test', 'teacher'),
                                   ('test', 'student seed 0'),
                                   ('test', 'fi seed 0')]
    assert (setup.work / 'fi' / 'seed0' / 'metrics.test.json').is_file()


# 2. trained means an intact final checkpoint


def test_damaged_final_checkpoint_is_trained_again_from_an_intact_one(
        setup, capsys):
    setup.run()
    final = setup.work / 'student' / 'seed0' / 'iter_2.pth'
    final.write_bytes(final.read_bytes()[:100])  # truncated
    setup.fake.calls.clear()
    setup.run()
    assert setup.fake.stages() == [('train', 'student seed 0'),
                                   ('test', 'student seed 0')]
    cfg = setup.fake.train_cfg('student seed 0')
    assert cfg.load_from == str(final.parent / 'iter_1.pth')
    assert 'training it again' in capsys.readouterr().out


# 3. a copied work dir resumes from its own checkpoints


def test_copied_work_dir_resumes_from_its_own_checkpoint_not_the_originals(
        setup, tmp_path, capsys):
    setup.fake.stop_at = 1
    with pytest.raises(RuntimeError, match='interrupted'):
        setup.run()
    copy = tmp_path / 'copy'
    shutil.copytree(setup.work, copy)
    setup.fake.stop_at = None
    setup.fake.calls.clear()
    setup.run(work=copy)
    cfg = setup.fake.train_cfg('student seed 0')
    assert cfg.load_from == str(copy / 'student' / 'seed0' / 'iter_1.pth')
    assert 'is outside the work dir' in capsys.readouterr().out
    # the original is as it was
    assert not (setup.work / 'student' / 'seed0' / 'iter_2.pth').exists()


# 4. a damaged metrics file names itself


@pytest.mark.parametrize('text,problem', [
    ('{"coco/bbox_mAP": 0.2', 'is not valid JSON'),
    ('[]', 'is not a JSON object'),
    ('{"coco/bbox_mAP_50": 0.5}', "has no `coco/bbox_mAP`"),
], ids=['invalid-json', 'not-an-object', 'missing-key'])
def test_damaged_metrics_file_is_an_error_naming_it(setup, text, problem):
    setup.run()
    metrics = setup.work / 'fi' / 'seed0' / 'metrics.json'
    metrics.write_text(text)
    message = refusal(setup)
    assert f'{metrics} {problem}' in message
    assert 'Delete it to evaluate fi seed 0 again' in message


# 5. a misspelt --metric lists the metric names


def test_misspelt_metric_is_refused_before_training_listing_metrics(setup):
    setup.fake.metrics = {}  # CocoMetric when nothing was detected
    message = refusal(setup, '--metric', 'coco/bbox_mAp')
    assert '--metric `coco/bbox_mAp` is not a metric' in message
    assert '`coco/bbox_mAP`' in message and '`coco/bbox_mAP_50`' in message
    assert setup.fake.calls == []


def test_misspelt_metric_after_the_runs_lists_what_they_report(setup):
    setup.fake.metrics = {'coco/bbox_mAP': 0.25, 'coco/bbox_AR': 0.3}
    setup.run()
    message = refusal(setup, '--metric', 'coco/bbox_AP')
    assert '`coco/bbox_AR`' in message and '`coco/bbox_mAP`' in message


# 6. a teacher checkpoint path with spaces and commas


def test_teacher_checkpoint_path_with_spaces_and_commas_reaches_training(
        setup, tmp_path):
    odd = tmp_path / 'my teachers, v2' / 'retina net,r18.pth'
    odd.parent.mkdir()
    shutil.copy(setup.ckpt, odd)
    setup.run(teacher_ckpt=odd)
    assert setup.fake.train_cfg('fi seed 0').model.teacher_ckpt == str(odd)
    teacher_test = next(cmd for stage, label, cmd in setup.fake.calls
                        if label == 'teacher')
    assert teacher_test[3] == str(odd)
