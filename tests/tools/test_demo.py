"""tools/demo.py's plan (each run once, teachers only when absent, the
default shows the four methods and FI) and its progress line."""
import importlib.util
import os.path as osp

import pytest

from .helpers import REPO


@pytest.fixture(scope='module')
def demo():
    spec = importlib.util.spec_from_file_location(
        'demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_plan_runs_the_four_methods_and_fi_once_each(demo):
    runs = demo.plan(demo.DEFAULT_PAIRS, demo.DEFAULT_METHODS, 'wd',
                     exists=lambda path: False)
    kinds = [(label.split()[0], kind) for label, _, _, kind in runs]
    assert kinds == [
        ('retinanet', 'teacher'), ('retinanet', 'student'),
        ('retinanet', 'fi'), ('retinanet', 'adl'), ('retinanet', 'sea'),
        ('retinanet', 'tbd'),
        # the heterogeneous pair reuses the RetinaNet student
        ('faster-rcnn-to-retinanet', 'teacher'),
        ('faster-rcnn-to-retinanet', 'gdetkd')]
    assert len({run_dir for _, _, run_dir, _ in runs}) == len(runs)


def test_plan_skips_teachers_whose_checkpoint_exists(demo):
    runs = demo.plan(['retinanet', 'faster-rcnn'], ['fi', 'gdetkd'], 'wd',
                     exists=lambda path: path.endswith('teacher.pth'))
    assert [kind for *_, kind in runs] == ['student', 'fi', 'student', 'fi',
                                           'gdetkd']


def test_progress_line_estimates_from_seconds_per_iteration(demo,
                                                            monkeypatch):
    clock = iter([0.0, 100.0, 300.0])
    monkeypatch.setattr(demo.time, 'time', lambda: next(clock))
    progress = demo.Progress([('teacher', 1200), ('student', 600),
                              ('done before', 0), ('fi', 600)])
    line = progress.finished('teacher', 1200, 100.0)
    # 100 s for 1200 iterations: 1200 more take 100 s
    assert line == '[1/4] teacher: done in 1:40; elapsed 1:40, about 1:40 left'
    line = progress.finished('student', 600, 200.0)
    # 300 s for 1800 iterations: 600 more take 100 s
    assert line == '[2/4] student: done in 3:20; elapsed 5:00, about 1:40 left'
