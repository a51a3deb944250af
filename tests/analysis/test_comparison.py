"""The comparison runner: planning, resuming an interrupted comparison,
and the table, with a fake executor instead of training."""
import json

import pytest

from sea_kd.analysis.comparison import (MetricsError, format_markdown,
                                        parse_seeds, plan_runs, run_comparison,
                                        summarize, summary_of)

AP = {  # config -> seed -> AP (fraction, as CocoMetric reports it)
    'student': {0: 0.10, 1: 0.12, 2: 0.11},
    'fi': {0: 0.11, 1: 0.12, 2: 0.10},
    'sea': {0: 0.13, 1: 0.15, 2: 0.14},
}


def fake_executor(calls, fail_after=None):
    def execute(run, slot):
        if fail_after is not None and len(calls) >= fail_after:
            raise RuntimeError('interrupted')
        calls.append((run.name, run.seed, slot))
        if run.role == 'teacher':
            return {'coco/bbox_mAP': 0.20}
        return {'coco/bbox_mAP': AP[run.name][run.seed], 'other': 1.0}
    return execute


def plan(tmp_path):
    return plan_runs(str(tmp_path), 'cfgs/student.py',
                     ['cfgs/fi.py', 'cfgs/sea.py'], [0, 1, 2],
                     teacher='cfgs/teacher.py')


def test_a_run_done_on_val_is_not_done_on_test(tmp_path):
    # one work dir, two splits: the val results must not be read as test's
    val = plan(tmp_path)
    run_comparison(val, fake_executor([]), jobs=1, log=lambda line: None)
    assert all(r.done for r in val)
    test = plan_runs(str(tmp_path), 'cfgs/student.py',
                     ['cfgs/fi.py', 'cfgs/sea.py'], [0, 1, 2],
                     teacher='cfgs/teacher.py', split='test')
    assert not any(r.done for r in test)
    assert {r.metrics_file.rsplit('/', 1)[1] for r in val} == {'metrics.json'}
    assert {r.metrics_file.rsplit('/', 1)[1] for r in test} == {
        'metrics.test.json'}
    calls = []
    run_comparison(test, fake_executor(calls), jobs=1, log=lambda line: None)
    assert len(calls) == 10 and all(r.done for r in test + val)


def test_parse_seeds():
    assert parse_seeds('0-4') == [0, 1, 2, 3, 4]
    assert parse_seeds('0,3,7') == [0, 3, 7]
    assert parse_seeds('5') == [5]
    for bad in ('3-1', '1,1', ''):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_interrupted_comparison_resumes_with_the_missing_runs(tmp_path):
    runs = plan(tmp_path)
    assert len(runs) == 10 and runs[0].role == 'teacher'
    calls, lines = [], []
    with pytest.raises(RuntimeError, match='interrupted'):
        run_comparison(runs, fake_executor(calls, fail_after=4), jobs=1,
                       log=lines.append)
    assert len(calls) == 4 and sum(r.done for r in runs) == 4
    assert lines[0].startswith('[1/10] teacher:')
    assert 'left' in lines[-1]
    again, lines = [], []
    run_comparison(runs, fake_executor(again), jobs=2, log=lines.append)
    assert len(again) == 6
    assert {(n, s) for n, s, _ in calls}.isdisjoint(
        {(n, s) for n, s, _ in again})
    assert all(r.done for r in runs)
    assert lines[0] == '4 of 10 runs already finished; 6 to go'
    assert {slot for _, _, slot in again} <= {0, 1}
    # nothing left: nothing runs
    none = []
    run_comparison(runs, fake_executor(none), jobs=2, log=lambda _: None)
    assert none == []


def test_summary_table(tmp_path):
    runs = plan(tmp_path)
    run_comparison(runs, fake_executor([]), log=lambda _: None)
    summary = summarize(runs, fi_name='fi')
    assert summary['teacher'] == pytest.approx(20.0)
    rows = {r['name']: r for r in summary['methods']}
    sea = rows['sea']
    assert sea['mean'] == pytest.approx(14.0)
    # sea − student per seed: 3, 3, 3
    assert sea['vs_student']['mean'] == pytest.approx(3.0)
    assert sea['vs_student']['wins'] == 3
    assert sea['vs_student']['ci_low'] == pytest.approx(3.0)
    # sea − fi per seed: 2, 3, 4 → mean 3, std 1
    assert sea['vs_fi']['mean'] == pytest.approx(3.0)
    assert sea['vs_fi']['std'] == pytest.approx(1.0)
    # gap: (14 − 11) / (20 − 11)
    assert sea['gap_closed'] == pytest.approx(3 / 9)
    assert rows['student']['vs_student'] is None
    assert rows['fi']['vs_fi'] is None
    table = format_markdown(summary)
    assert '| `sea` | 14.0 ± 1.0 (3) | +3.0 [+3.0, +3.0] | 3/3 |' in table
    assert '33%' in table and 'teacher: 20.0' in table
    assert 'Δ vs FI [95% CI]' in table
    summary['baseline_label'] = '`sea_default`'
    assert 'Δ vs `sea_default` [95% CI]' in format_markdown(summary)
    json.dumps(summary)  # serialisable
    # a metric no run reports: an error listing those they do
    with pytest.raises(MetricsError, match='`coco/segm_mAP` is not a metric'
                       '.*`coco/bbox_mAP`, `other`'):
        summarize(runs, metric='coco/segm_mAP')


def test_distinct_names_required(tmp_path):
    with pytest.raises(ValueError, match='distinct'):
        plan_runs(str(tmp_path), 'a/x.py', ['b/x.py'], [0])


def test_further_pairs_are_paired_by_seed(tmp_path):
    """``pairs``: the difference between any two configs, seed by seed
    (fi − sea per seed: −2, −3, −4)."""
    runs = plan(tmp_path)
    run_comparison(runs, fake_executor([]), log=lambda _: None)
    summary = summarize(runs, fi_name='fi', pairs=[('fi', 'sea')])
    (pair, ) = summary['pairs']
    assert (pair['config'], pair['baseline']) == ('fi', 'sea')
    assert pair['diff']['mean'] == pytest.approx(-3.0)
    assert pair['diff']['wins'] == 0 and pair['diff']['n'] == 3
    assert '| `fi` | `sea` | -3.0 [' in format_markdown(summary)
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        summarize(runs, pairs=[('nope', 'sea')])


def test_summary_of_per_seed_values_is_the_runs_summary(tmp_path):
    """A figure's data rebuilt from a table's per-seed values (``summary_of``)
    is what ``summarize`` gives for the finished runs."""
    runs = plan(tmp_path)
    run_comparison(runs, fake_executor([]), log=lambda _: None)
    by_name = {name: {seed: 100 * ap for seed, ap in aps.items()}
               for name, aps in AP.items()}
    roles = {name: 'student' if name == 'student' else 'method'
             for name in AP}
    rebuilt = summary_of(by_name, roles, teacher_ap=20.0, fi_name='fi',
                         pairs=[('fi', 'sea')])
    assert rebuilt == summarize(runs, fi_name='fi', pairs=[('fi', 'sea')])
    assert [r['name'] for r in rebuilt['methods']] == ['student', 'fi', 'sea']
