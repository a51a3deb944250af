"""tools/loss_trace.py: the record of a config's first iterations, and the
comparison that tells a refactoring left training unchanged."""
import json
import math
import os
import os.path as osp
import sys

import pytest

from .helpers import DEMO, REPO, data_options, python, run_tool

sys.path.insert(0, osp.join(REPO, 'tools'))
import loss_trace  # noqa: E402

CONFIG = osp.join(DEMO, 'fi_retinanet_r18_to_r18-w16_synthetic.py')


def test_largest_difference():
    old = [{'loss': 1.0, 'loss_kd': 0.5}, {'loss': 0.9, 'loss_kd': 0.25}]
    assert loss_trace.largest_difference(old, [dict(r) for r in old]) == 0
    new = [dict(r) for r in old]
    new[1]['loss_kd'] = 0.25 + 2**-20
    assert loss_trace.largest_difference(new, old) == 2**-20
    assert loss_trace.largest_difference(new[:1], old) == math.inf
    assert loss_trace.largest_difference(
        [{'loss': 1.0}, old[1]], old) == math.inf          # a term lost
    nan = [{'loss': math.nan, 'loss_kd': 0.5}, old[1]]
    assert loss_trace.largest_difference(nan, [dict(r) for r in nan]) == 0
    assert loss_trace.largest_difference(nan, old) == math.inf
    assert loss_trace.largest_difference(old, nan) == math.inf
    inf = [{'loss': math.inf, 'loss_kd': 0.5}, old[1]]
    assert loss_trace.largest_difference(inf, [dict(r) for r in inf]) == 0
    assert loss_trace.largest_difference(inf, old) == math.inf


def _trace(out, *extra, options=(), check=True):
    return run_tool(python('tools/loss_trace.py', CONFIG, '--out', out,
                           '--iters', '2', *extra, '--cfg-options',
                           *options), check=check)


def test_record_twice_is_bit_identical(synthetic_root, tmp_path):
    """Two records of a distiller config (two processes) are equal, its
    teacher (whose checkpoint is missing) made once from the teacher
    config's initial weights; a changed option is found."""
    options = data_options(synthetic_root) + [
        'model.teacher_ckpt=missing.pth']
    first, second, third = (str(tmp_path / name) for name in 'abc')
    _trace(first, options=options)
    rows = json.loads((tmp_path / 'a' / (
        'fi_retinanet_r18_to_r18-w16_synthetic.json')).read_text())['rows']
    assert len(rows) == 2 and {'loss', 'loss_fi_feat'} <= set(rows[0])
    made = os.listdir(osp.join(first, 'teachers'))
    assert len(made) == 1 and made[0].startswith('retinanet_r18_synthetic-')
    same = _trace(second, '--against', first, options=options)
    assert 'largest difference 0\n' in same.stdout
    assert '1 of 1 configs bit-identical' in same.stdout
    changed = _trace(third, '--against', first, check=False,
                     options=options +
                     ['model.methods.0.loss_feat.loss_weight=3.0'])
    assert changed.returncode == 1
    assert '0 of 1 configs bit-identical' in changed.stdout
    # a difference found in the losses, not a config that failed to run
    assert 'largest difference' in changed.stdout
    assert 'largest difference 0\n' not in changed.stdout


def test_same_directory_for_out_and_against_refused(tmp_path):
    with pytest.raises(SystemExit, match='name the same directory'):
        loss_trace.main([CONFIG, '--out', str(tmp_path), '--against',
                         str(tmp_path) + '/'])


def test_a_config_that_fails_is_reported(tmp_path, capsys):
    missing = str(tmp_path / 'nowhere.py')
    assert loss_trace.main([missing, '--out', str(tmp_path / 'o'),
                            '--iters', '1']) == 1
    assert 'nowhere: not recorded: FileNotFoundError' in \
        capsys.readouterr().out
