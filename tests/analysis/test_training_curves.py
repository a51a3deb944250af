"""Reading mmengine scalar logs and charting them, on hand-written logs."""
import json

import pytest

from sea_kd.analysis.training_curves import (find_scalar_files, load_scalars,
                                             loss_keys, moving_average,
                                             plot_losses, plot_metric,
                                             teacher_lines)

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def train_line(it, loss_cls, loss_bbox, **extra):
    line = dict(lr=0.001, data_time=0.01, loss=loss_cls + loss_bbox,
                loss_cls=loss_cls, loss_bbox=loss_bbox, time=0.2, iter=it,
                step=it)
    line.update(extra)
    return line


def val_line(ap, step=0, **extra):
    return {'coco/bbox_mAP': ap, 'coco/bbox_mAP_50': 2 * ap,
            'data_time': 0.003, 'time': 0.03, 'step': step, **extra}


def write_session(work_dir, timestamp, lines):
    vis = work_dir / timestamp / 'vis_data'
    vis.mkdir(parents=True)
    path = vis / 'scalars.json'
    path.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    return path


def test_values_and_keys_of_an_iteration_based_log(tmp_path):
    run = tmp_path / 'run_a'
    # mmengine's default LoggerHook logs the validation at step=epoch=0
    write_session(run, '20250101_000000', [
        train_line(1, 0.9, 0.5, loss_fi_feat=3.0),
        train_line(2, 0.8, 0.4, loss_fi_feat=2.0),
        val_line(0.1),
        train_line(3, 0.7, 0.3, loss_fi_feat=1.5),
        train_line(4, 0.6, 0.2, loss_fi_feat=1.0),
        val_line(0.2),
    ])
    scalars = load_scalars(str(run))
    assert scalars['name'] == 'run_a'
    assert scalars['by_epoch'] is False and scalars['val_unit'] == 'iter'
    assert set(scalars['train']) == {
        'lr', 'data_time', 'loss', 'loss_cls', 'loss_bbox', 'time',
        'loss_fi_feat'}
    assert scalars['train']['loss_cls'] == ([1, 2, 3, 4],
                                            [0.9, 0.8, 0.7, 0.6])
    assert scalars['train']['loss'][1] == pytest.approx([1.4, 1.2, 1.0, 0.8])
    assert scalars['val']['coco/bbox_mAP'] == ([2.0, 4.0], [0.1, 0.2])
    assert scalars['val']['coco/bbox_mAP_50'][1] == [0.2, 0.4]
    assert loss_keys([scalars]) == ['loss', 'loss_cls', 'loss_bbox',
                                    'loss_fi_feat']
    # the same run found from its timestamp dir, vis_data dir and file
    session = run / '20250101_000000'
    for path in (session, session / 'vis_data',
                 session / 'vis_data' / 'scalars.json'):
        again = load_scalars(str(path))
        assert again['name'] == 'run_a' and again['val'] == scalars['val']


def test_validation_logged_by_iteration_keeps_its_step(tmp_path):
    # LoggerHook(log_metric_by_epoch=False): step is the iteration, also
    # when the logger interval (2) does not divide the validation interval
    run = tmp_path / 'run'
    write_session(run, '20250101_000000', [
        train_line(2, 0.9, 0.5), train_line(4, 0.8, 0.4),
        val_line(0.1, step=5), train_line(6, 0.7, 0.3)])
    assert load_scalars(str(run))['val']['coco/bbox_mAP'][0] == [5.0]


def test_epoch_based_log(tmp_path):
    run = tmp_path / 'run'
    write_session(run, '20250101_000000', [
        train_line(50, 0.9, 0.5, epoch=1), train_line(100, 0.8, 0.4,
                                                      epoch=1),
        val_line(0.1, step=1),
        train_line(150, 0.7, 0.3, epoch=2),
        # log_metric_by_epoch=False in an epoch-based run: step = iteration
        val_line(0.2, step=200),
    ])
    scalars = load_scalars(str(run))
    assert scalars['by_epoch'] is True and scalars['val_unit'] == 'epoch'
    assert scalars['train']['loss_cls'][0] == [50, 100, 150]
    assert scalars['val']['coco/bbox_mAP'] == ([1.0, 2.0], [0.1, 0.2])


def test_a_resumed_run_is_merged_in_time_order(tmp_path):
    run = tmp_path / 'run'
    write_session(run, '20250101_000000', [
        train_line(1, 0.9, 0.5), train_line(2, 0.8, 0.4), val_line(0.1),
        train_line(3, 0.7, 0.3), train_line(4, 0.6, 0.2), val_line(0.2)])
    # interrupted after iteration 4, resumed from the iteration-2 checkpoint
    write_session(run, '20250101_010000', [
        train_line(3, 0.75, 0.35), train_line(4, 0.65, 0.25),
        val_line(0.25), train_line(5, 0.55, 0.15),
        train_line(6, 0.5, 0.1), val_line(0.3)])
    # a test run: no vis_data/scalars.json, skipped
    (run / '20250101_020000').mkdir()
    (run / '20250101_020000' / '20250101_020000.json').write_text(
        json.dumps({'coco/bbox_mAP': 0.3}) + '\n')
    scalars = load_scalars(str(run))
    assert len(scalars['files']) == 2
    assert scalars['train']['loss_cls'] == ([1, 2, 3, 4, 5, 6],
                                            [0.9, 0.8, 0.75, 0.65, 0.55, 0.5])
    assert scalars['val']['coco/bbox_mAP'] == ([2.0, 4.0, 6.0],
                                               [0.1, 0.25, 0.3])


def test_a_fresh_run_into_the_same_dir_replaces_the_old_one(tmp_path):
    run = tmp_path / 'run'
    write_session(run, '20250101_000000', [
        train_line(1, 0.9, 0.5), train_line(2, 0.8, 0.4), val_line(0.1)])
    write_session(run, '20250102_000000', [
        train_line(1, 0.5, 0.2), train_line(2, 0.4, 0.1), val_line(0.3)])
    scalars = load_scalars(str(run))
    assert scalars['train']['loss_cls'] == ([1, 2], [0.5, 0.4])
    assert scalars['val']['coco/bbox_mAP'] == ([2.0], [0.3])


def test_a_path_without_scalars_is_an_error(tmp_path):
    (tmp_path / 'empty' / '20250101_000000').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='No scalars.json under'):
        find_scalar_files(str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_scalars(str(tmp_path / 'missing'))
    metrics = tmp_path / 'metrics.json'
    metrics.write_text(json.dumps({'coco/bbox_mAP': 0.3}) + '\n')
    with pytest.raises(ValueError, match='neither `iter` nor `step`'):
        load_scalars(str(metrics))


def test_moving_average_against_a_hand_computation():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    # window 3: (1)/1, (1+2)/2, (1+2+3)/3, (2+3+4)/3, (3+4+10)/3
    assert moving_average(values, 3) == pytest.approx(
        [1.0, 1.5, 2.0, 3.0, 17 / 3])
    assert moving_average(values, 1) == values
    assert moving_average(values, 10) == pytest.approx(
        [1.0, 1.5, 2.0, 2.5, 4.0])
    with pytest.raises(ValueError, match='>= 1'):
        moving_average(values, 0)


@pytest.fixture
def two_runs(tmp_path):
    runs = []
    for name, scale in (('student', 1.0), ('distilled', 0.8)):
        lines = []
        for it in range(1, 9):
            extra = {'loss_kd': 1.0 / it} if name == 'distilled' else {}
            lines.append(train_line(it, scale / it, scale / (2 * it),
                                    **extra))
            if it % 4 == 0:
                lines.append(val_line(0.02 * it / scale))
        write_session(tmp_path / name, '20250101_000000', lines)
        runs.append(load_scalars(str(tmp_path / name)))
    return runs


def assert_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > min_bytes


def test_charts_are_written(tmp_path, two_runs):
    losses = tmp_path / 'out' / 'losses.png'
    assert plot_losses(two_runs, str(losses), smooth=2) == str(losses)
    assert_png(losses)
    curve = tmp_path / 'out' / 'metric.png'
    plot_metric(two_runs, str(curve), percent=True,
                hlines={'teacher': 17.5})
    assert_png(curve)
    bar = tmp_path / 'bar.png'
    # two runs under one label: one bar, their mean
    plot_metric(two_runs, str(bar), labels=['ours', 'ours'], bar=True)
    assert_png(bar)


def test_a_missing_key_lists_the_available_ones(tmp_path, two_runs):
    with pytest.raises(ValueError) as err:
        plot_losses(two_runs, str(tmp_path / 'x.png'),
                    keys=['loss_cls', 'loss_nope'])
    message = str(err.value)
    assert 'loss_nope' in message and 'loss_kd' in message
    assert 'loss_bbox' in message
    with pytest.raises(ValueError, match='coco/bbox_mAP_50'):
        plot_metric(two_runs, str(tmp_path / 'x.png'), metric='coco/segm')
    assert not (tmp_path / 'x.png').exists()


def test_reference_lines(tmp_path, two_runs):
    with pytest.raises(ValueError, match='--percent'):
        plot_metric(two_runs, str(tmp_path / 'x.png'),
                    hlines={'teacher': 17.5})
    with pytest.raises(ValueError, match='one label per run'):
        plot_metric(two_runs, str(tmp_path / 'x.png'), labels=['a'])
    assert teacher_lines(two_runs, 'coco/bbox_mAP') == {}
    two_runs[1]['val']['teacher/coco/bbox_mAP'] = ([8.0], [0.175])
    assert teacher_lines(two_runs, 'coco/bbox_mAP') == {'teacher': 0.175}


def test_loss_keys_include_the_balance_factors_and_shares():
    run = {'train': {'lr': 0, 'loss': 0, 'balance_factor_fi': 0,
                     'loss_fi_feat': 0, 'balance_share_fi': 0}}
    assert loss_keys([run]) == ['loss', 'balance_factor_fi', 'loss_fi_feat',
                                'balance_share_fi']
