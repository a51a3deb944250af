"""Live progress of a logged run: mmengine's progress lines parsed, plain
periodic reports when the output is not a terminal, in-place updates on one,
and the end of the log shown when a run fails."""
import io
import sys
import textwrap
import time

import pytest

from sea_kd.analysis.run_progress import (LogProgress, clock, parse_progress,
                                          progress_line, run_logged)

from ..tools.helpers import DEMO, REPO, data_options, short_run

TRAIN_LINE = ('12/05 09:40:46 - mmengine - INFO - Iter(train) [ 50/600]  '
              'lr: 1.0000e-03  eta: {eta}  time: 0.9712  loss: 3.4366')


def test_parse_takes_the_last_progress_line_and_its_eta():
    text = '\n'.join([
        'loading annotations',
        TRAIN_LINE.format(eta='0:06:59'),
        TRAIN_LINE.replace('[ 50/600]', '[ 75/600]').format(eta='0:05:37'),
        'an unrelated line',
    ])
    assert parse_progress(text) == LogProgress('train', 75, 600,
                                               5 * 60 + 37.0)


def test_parse_reads_days_test_stages_and_lines_without_eta():
    days = TRAIN_LINE.format(eta='2 days, 1:00:05')
    assert parse_progress(days).eta == (49 * 60) * 60 + 5.0
    test = '12/05 10:10:34 - mmengine - INFO - Iter(test) [25/50]    eta: ' \
        '0:00:00  time: 0.0350'
    assert parse_progress(test) == LogProgress('test', 25, 50, 0.0)
    assert parse_progress('Iter(val) [3/9]  time: 1.0') == LogProgress(
        'val', 3, 9, None)
    assert parse_progress('nothing logged yet\n') is None


def test_progress_line_names_iterations_and_both_times_left():
    state = LogProgress('train', 150, 600, 70.0)
    assert progress_line('fi seed 0 train', state, 50.0, 760.0) == (
        '  fi seed 0 train: train iter 150/600 (25%), run about 1:10 left; '
        'elapsed 0:50; all about 12:40 left')
    assert progress_line('x', None, 3.0, None) == \
        '  x: starting; elapsed 0:03'
    assert clock(3725) == '1:02:05'


FAKE_RUN = textwrap.dedent('''
    import sys, time
    for i in range(1, 8):
        print(f"Iter(train) [{i}/7]  eta: 0:00:{7 - i:02d}  loss: 1.0",
              flush=True)
        time.sleep(0.3)
    sys.exit(int(sys.argv[1]))
''')


def test_plain_reports_come_periodically_while_the_run_goes(tmp_path):
    out = io.StringIO()
    seen = []

    def overall_left(state, elapsed):
        seen.append(state)
        return 100.0

    run_logged([sys.executable, '-c', FAKE_RUN, '0'], str(tmp_path / 'log'),
               'fake', overall_left=overall_left, every=0.5, stream=out)
    lines = out.getvalue().splitlines()
    # about 2.1 s of run: a report every 0.5 s, none in place
    assert len(lines) >= 3, lines
    assert all(line.startswith('  fake: ') for line in lines)
    assert '\r' not in out.getvalue()
    assert any('train iter' in line and '/7' in line for line in lines)
    assert all(line.endswith('all about 1:40 left') for line in lines)
    done = [s.done for s in seen if s is not None]
    assert done == sorted(done) and done[-1] > done[0]


def test_in_place_reports_rewrite_one_line(tmp_path):
    out = io.StringIO()
    run_logged([sys.executable, '-c', FAKE_RUN, '0'], str(tmp_path / 'log'),
               'fake', every=0.5, stream=out, in_place=True)
    text = out.getvalue()
    assert '\n' not in text
    assert text.count('\r') >= 2 and '[' in text and 'train iter' in text


def test_a_failing_run_shows_the_end_of_its_log(tmp_path):
    log = tmp_path / 'log'
    with pytest.raises(RuntimeError) as error:
        run_logged([sys.executable, '-c', FAKE_RUN, '3'], str(log), 'fake',
                   every=10.0, stream=io.StringIO(), tail_lines=2)
    message = str(error.value)
    assert 'fake failed (exit 3)' in message and str(log) in message
    assert 'Iter(train) [7/7]' in message and '[5/7]' not in message


@pytest.mark.slow
def test_a_real_training_reports_its_iterations(tmp_path, synthetic_root):
    """The non-terminal form on a tiny run of ``tools/train.py``."""
    out = io.StringIO()
    run_logged([sys.executable, 'tools/train.py',
                f'{DEMO}/retinanet_r18-w16_synthetic.py', '--work-dir',
                str(tmp_path / 'work'), '--cfg-options',
                *data_options(synthetic_root), *short_run(40)],
               str(tmp_path / 'train.log'), 'student', cwd=REPO, every=0.5,
               stream=out)
    lines = out.getvalue().splitlines()
    assert any('train iter' in line and '/40' in line and 'run about' in line
               for line in lines), lines


def test_epoch_based_lines_are_read():
    line = ('12/05 09:40:46 - mmengine - INFO - Epoch(train)  [3][ 50/7330]  '
            'lr: 2.0e-02  eta: 1 day, 2:03:04  time: 0.5')
    state = parse_progress(line)
    assert state == LogProgress('train', 50, 7330,
                                ((24 + 2) * 60 + 3) * 60 + 4.0, 3)
    assert 'train epoch 3, iter 50/7330' in progress_line('x', state, 1.0,
                                                          None)
    assert parse_progress('Epoch(val) [12][ 25/625]    eta: 0:01:00') == \
        LogProgress('val', 25, 625, 60.0, 12)


def test_overall_time_left_of_a_comparison():
    from sea_kd.analysis.comparison import Progress
    progress = Progress(total=4, jobs=1)
    train = LogProgress('train', 150, 600, 90.0)
    # nothing finished yet: this run's projected training (30 + 90 s)
    # stands for each of the 3 runs after it
    assert progress.overall_left(train, 30.0) == 90.0 + 3 * 120.0
    # the first run's evaluation gives no estimate of a whole run
    assert progress.overall_left(LogProgress('test', 5, 50, 10.0),
                                 3.0) is None
    progress.durations.append(200.0)
    progress.done = 1
    # the mean of the finished runs for the 2 not started
    assert progress.overall_left(train, 30.0) == 90.0 + 2 * 200.0
    assert progress.overall_left(None, 50.0) == 150.0 + 2 * 200.0


def test_an_error_while_watching_stops_the_run(tmp_path):
    def broken(state, elapsed):
        raise KeyError('boom')

    marker = tmp_path / 'still running'
    script = ('import time, pathlib\n'
              'time.sleep(3)\n'
              f'pathlib.Path({str(marker)!r}).write_text("x")\n')
    with pytest.raises(KeyError, match='boom'):
        run_logged([sys.executable, '-c', script], str(tmp_path / 'log'),
                   'fake', overall_left=broken, every=0.2,
                   stream=io.StringIO())
    time.sleep(3.5)
    assert not marker.exists()  # the child was killed, not left running
