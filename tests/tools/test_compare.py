"""tools/compare.py end to end: two configs, two seeds, two at a time, on
the test split of a generated data set, the teacher checkpoint in a path
with spaces and commas; then again, resuming nothing."""
import json
import shutil

import pytest
from mmengine.config import Config

from sea_kd.analysis.synthetic_coco import generate_synthetic_coco

from .helpers import (DEMO, data_options, keep_all_detections_configs, python,
                      run_tool, short_run)

pytestmark = pytest.mark.slow


def test_compare_two_configs_two_seeds_on_test(tmp_path, retina_teacher_ckpt):
    root = tmp_path / 'data'
    summary = generate_synthetic_coco(str(root), num_train=16, num_val=4,
                                      num_test=6, seed=4)
    assert summary['num_test_images'] == 6
    student, fi = keep_all_detections_configs(tmp_path)
    work = tmp_path / 'cmp'
    teacher = tmp_path / 'teachers, r18' / 'retina net,2 iters.pth'
    teacher.parent.mkdir()
    shutil.copy(retina_teacher_ckpt, teacher)
    cmd = python('tools/compare.py', '--student', student, '--methods', fi,
                 '--teacher', f'{DEMO}/retinanet_r18_synthetic.py',
                 '--teacher-ckpt', teacher, '--seeds', '0-1',
                 '--jobs', '2', '--split', 'test', '--work-dir', work,
                 '--cfg-options', *data_options(str(root)), *short_run(2))
    out = run_tool(cmd)
    assert '[5/5]' in out.stdout and 'left' in out.stdout
    result = json.loads((work / 'comparison.json').read_text())
    rows = {r['name']: r for r in result['methods']}
    assert set(rows) == {'student', 'fi'}
    assert rows['fi']['vs_student']['n'] == 2
    assert result['fi'] == 'fi' and result['teacher'] is not None
    assert (work / 'comparison.png').stat().st_size > 0
    assert '| `fi` |' in (work / 'comparison.md').read_text()
    # evaluated on the 6 test images, not the 4 validation images
    log = (work / 'student' / 'seed0' / 'test.log').read_text()
    assert 'instances_test.json' in log
    # the distiller trained with the teacher named, path intact
    trained = Config.fromfile(work / 'fi' / 'seed0' / 'configs' / 'fi.py')
    assert trained.model.teacher_ckpt == str(teacher)
    assert (work / 'fi' / 'seed1' / 'run.json').is_file()
    again = run_tool(cmd)
    assert '5 of 5 runs already finished; 0 to go' in again.stdout
