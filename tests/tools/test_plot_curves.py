"""tools/plot_curves.py on the logs of a real mmengine training run."""
from pathlib import Path

import pytest

from sea_kd.analysis.training_curves import load_scalars

from .helpers import (data_options, keep_all_detections_configs, python,
                      run_tool, short_run)

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def fi_work_dir(tmp_path_factory, synthetic_root, retina_teacher_ckpt):
    """A 4-iteration feature-imitation run validated after iterations 2
    and 4, through tools/train.py (mmengine's Runner, default LoggerHook).
    The student keeps every detection, so that COCO AP is computed at all
    after 4 iterations."""
    root = tmp_path_factory.mktemp('fi_run')
    _, distiller = keep_all_detections_configs(root)
    work = root / 'work'
    run_tool(python('tools/train.py', distiller,
                    '--work-dir', work, '--cfg-options',
                    *data_options(synthetic_root),
                    f'model.teacher_ckpt={retina_teacher_ckpt}',
                    *short_run(4), 'train_cfg.val_interval=2'))
    return work


def assert_png(path, min_bytes=5000):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > min_bytes, path


def test_the_log_of_a_real_run_is_parsed(fi_work_dir):
    scalars = load_scalars(str(fi_work_dir))
    assert scalars['by_epoch'] is False
    assert scalars['train']['loss_fi_feat'][0] == [1, 2, 3, 4]
    for key in ('loss', 'loss_cls', 'loss_bbox', 'lr'):
        assert len(scalars['train'][key][1]) == 4, key
    # mmengine logs these validations at step 0 (the epoch count)
    xs, aps = scalars['val']['coco/bbox_mAP']
    assert xs == [2.0, 4.0] and all(0 <= ap <= 1 for ap in aps)


def test_the_tool_writes_the_charts(fi_work_dir, tmp_path):
    out = tmp_path / 'charts'
    proc = run_tool(python('tools/plot_curves.py', fi_work_dir, fi_work_dir,
                           '--labels', 'first', 'second', '--smooth', '2',
                           '--out', out))
    assert_png(out / 'losses.png')
    assert_png(out / 'metric.png')
    assert '2 coco/bbox_mAP point(s)' in proc.stdout

    bar = tmp_path / 'bar.png'
    run_tool(python('tools/plot_curves.py', fi_work_dir, '--chart', 'metric',
                    '--bar', '--percent', '--hline', 'teacher=17.5',
                    '--out', bar))
    assert_png(bar)


def test_the_tool_names_the_available_keys(fi_work_dir, tmp_path):
    proc = run_tool(python('tools/plot_curves.py', fi_work_dir, '--keys',
                           'loss_nope', '--out', tmp_path / 'x'),
                    check=False)
    assert proc.returncode != 0
    assert 'loss_nope' in proc.stdout and 'loss_fi_feat' in proc.stdout
    assert not (tmp_path / 'x' / 'losses.png').exists()
