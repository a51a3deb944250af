"""A teacher checkpoint trained on other classes, or on the same classes in
another order, than the training set: the class count matches, so only the
names show it. Training refuses before the first iteration and
tools/check_pair.py reports a problem."""
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from sea_kd.analysis.synthetic_coco import SYNTHETIC_CLASSES
from sea_kd.engine.hooks import DatasetClassesCheckHook, DatasetClassesError
from sea_kd.models.detectors.pair_checks import (checkpoint_classes,
                                                 class_identity_problem)
from tests.tools.helpers import DEMO, data_options, python, run_tool, short_run

FI_CONFIG = osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py')
CLASSES = list(SYNTHETIC_CLASSES)  # circle, square, triangle, ring, ...
#: the same names, the first two swapped
REORDERED = [CLASSES[1], CLASSES[0], *CLASSES[2:]]
#: the same count, the last name another
OTHER = [*CLASSES[:-1], 'hexagon']


def classes_option(classes) -> str:
    return f'train_dataloader.dataset.metainfo.classes=({",".join(classes)})'


# ----------------------------------------------------------- the comparison
def test_same_classes_in_the_same_order_or_unknown_are_no_problem():
    assert class_identity_problem(CLASSES, tuple(CLASSES), 'a.pth') is None
    assert class_identity_problem(None, CLASSES, 'a.pth') is None
    assert class_identity_problem(CLASSES, [], 'a.pth') is None


def test_reordered_classes_name_the_checkpoint_first_difference_and_fix():
    message = class_identity_problem(CLASSES, REORDERED, 'a.pth')
    assert message.startswith('`teacher_ckpt` file `a.pth` was trained on '
                              'other classes than the training set')
    assert "first difference, class index 0: checkpoint 'circle', " \
        "training set 'square'" in message
    assert f'checkpoint (6): {", ".join(CLASSES)}' in message
    assert f'training set (6): {", ".join(REORDERED)}' in message
    assert f'metainfo=dict(classes={tuple(CLASSES)!r})' in message


def test_other_classes_name_what_only_each_side_has():
    message = class_identity_problem(CLASSES, OTHER, 'a.pth')
    assert "class index 5: checkpoint 'star', training set 'hexagon'" in \
        message
    assert 'only in the checkpoint: star; only in the training set: ' \
        'hexagon' in message
    assert 'train (or fine-tune) the teacher' in message


def test_checkpoint_classes_from_mmengine_and_mmdet2_meta():
    assert checkpoint_classes(dict(dataset_meta=dict(
        classes=tuple(CLASSES)))) == CLASSES
    assert checkpoint_classes(dict(CLASSES=CLASSES)) == CLASSES
    assert checkpoint_classes(dict(dataset_meta=dict())) is None
    assert checkpoint_classes(dict()) is None


# ----------------------------------------------------------------- the hook
def _runner(tmp_path, data_classes, meta):
    """A runner whose distiller's teacher checkpoint has ``meta``."""
    ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1)), meta=meta), ckpt)
    head = SimpleNamespace(bbox_head=SimpleNamespace(num_classes=6))
    # as a Distiller keeps them after loading its teacher checkpoint
    model = SimpleNamespace(teacher=head, student=head,
                            teacher_ckpt=str(ckpt),
                            teacher_ckpt_classes=checkpoint_classes(meta))
    dataset = SimpleNamespace(metainfo=dict(classes=tuple(data_classes)))
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(
        dataset=dataset)), ckpt


@pytest.mark.parametrize('data_classes', [REORDERED, OTHER])
def test_hook_refuses_a_teacher_of_other_classes(tmp_path, data_classes):
    runner, ckpt = _runner(tmp_path, data_classes,
                           dict(dataset_meta=dict(classes=tuple(CLASSES))))
    with pytest.raises(DatasetClassesError) as error:
        DatasetClassesCheckHook().before_train(runner)
    assert f'`teacher_ckpt` file `{ckpt}` was trained on other classes' in \
        str(error.value)
    assert 'first difference' in str(error.value)


@pytest.mark.parametrize('meta', [
    dict(dataset_meta=dict(classes=tuple(CLASSES))), dict()])
def test_hook_passes_the_same_classes_or_a_checkpoint_without_them(
        tmp_path, meta):
    runner, _ = _runner(tmp_path, CLASSES, meta)
    DatasetClassesCheckHook().before_train(runner)


# --------------------------------------------------- the tools, end to end
@pytest.mark.slow
def test_training_against_a_teacher_of_reordered_classes_stops_first(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    out = run_tool(python(
        'tools/train.py', FI_CONFIG, '--work-dir', tmp_path,
        '--cfg-options', *data_options(synthetic_root), *short_run(1),
        f'model.teacher_ckpt={retina_teacher_ckpt}',
        classes_option(REORDERED)), check=False)
    assert out.returncode != 0
    assert 'DatasetClassesError' in out.stdout, out.stdout[-3000:]
    assert f'`teacher_ckpt` file `{retina_teacher_ckpt}` was trained on ' \
        'other classes' in out.stdout
    assert "first difference, class index 0: checkpoint 'circle', " \
        "training set 'square'" in out.stdout
    assert 'Iter(train)' not in out.stdout
    assert not list(tmp_path.glob('*.pth'))


@pytest.mark.slow
def test_check_pair_reports_a_teacher_of_other_classes(
        tmp_path, synthetic_root, retina_teacher_ckpt):
    report = tmp_path / 'report.json'
    out = run_tool(python(
        'tools/check_pair.py', FI_CONFIG, '--num-val-images', '0',
        '--device', 'cpu', '--out', report, '--cfg-options',
        *data_options(synthetic_root),
        f'model.teacher_ckpt={retina_teacher_ckpt}', classes_option(OTHER)),
        check=False)
    assert out.returncode == 1, out.stdout[-3000:]
    assert 'No problems found' not in out.stdout
    assert 'PROBLEMS:' in out.stdout
    assert 'only in the checkpoint: star; only in the training set: ' \
        'hexagon' in out.stdout
    problems = json.loads(report.read_text())['problems']
    assert any(f'`teacher_ckpt` file `{retina_teacher_ckpt}` was trained '
               'on other classes' in p for p in problems)
