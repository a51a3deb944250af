"""The data of the comparison figures in docs/figures/summaries/: each
summary's statistics are those of its own per-seed values, each has its
figure and each comparison figure its data, and a summary rebuilt from a
table of docs/results.md has that table's per-seed values."""
import functools
import glob
import json
import os.path as osp

import pytest

from sea_kd.analysis.comparison import summary_of

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIGURES = osp.join(ROOT, 'docs', 'figures')
SUMMARIES = sorted(glob.glob(osp.join(FIGURES, 'summaries', '*.json')))

# within 0.001 AP: the older summaries were written with a tabulated t
# quantile and a hand-written deviation, which differ from scipy's and
# numpy's in the fifth digit
approx = functools.partial(pytest.approx, abs=1e-3)


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def test_every_comparison_figure_has_its_data():
    figures = {osp.basename(p)[:-len('.png')]
               for p in glob.glob(osp.join(FIGURES, 'compar*.png'))}
    data = {osp.basename(p)[:-len('.json')] for p in SUMMARIES}
    assert len(figures) >= 19
    assert figures == data, (figures - data, data - figures)


def check_diff(got, want, where):
    if want is None:
        assert got is None, where
        return
    for stat in ('mean', 'ci_low', 'ci_high', 'wins', 'n'):
        assert got[stat] == approx(want[stat]), (where, stat)


@pytest.mark.parametrize('path', SUMMARIES, ids=osp.basename)
def test_summary_statistics_follow_from_its_per_seed_values(path):
    summary = load(path)
    by_name = {row['name']: {int(s): ap for s, ap in row['ap'].items()}
               for row in summary['methods']}
    roles = {row['name']: row['role'] for row in summary['methods']}
    pairs = [(p['config'], p['baseline']) for p in summary.get('pairs', [])]
    again = summary_of(by_name, roles, metric=summary['metric'],
                       teacher_ap=summary['teacher'], fi_name=summary['fi'],
                       pairs=pairs)
    assert summary['student'] == again['student']
    assert [r['name'] for r in summary['methods']] == \
        [r['name'] for r in again['methods']]
    for row, want in zip(summary['methods'], again['methods']):
        for key in ('mean', 'std', 'gap_closed'):
            assert row[key] == approx(want[key]), (row['name'], key)
        for key in ('vs_student', 'vs_fi'):
            check_diff(row[key], want[key], (row['name'], key))
    assert len(summary.get('pairs', [])) == len(again['pairs'])
    for pair, want in zip(summary.get('pairs', []), again['pairs']):
        check_diff(pair['diff'], want['diff'], pair['config'])


REBUILT = [p for p in SUMMARIES if 'source' in load(p)]


def test_some_summaries_are_rebuilt_from_tables():
    assert len(REBUILT) == 6


@pytest.mark.parametrize('path', REBUILT, ids=osp.basename)
def test_a_rebuilt_summary_has_its_tables_per_seed_values(path):
    """Each row's per-seed values, as the table's "per seed" cell writes
    them (one decimal, " / " between seeds), are in docs/results.md next to
    the figure."""
    with open(osp.join(ROOT, 'docs', 'results.md')) as f:
        page = f.read()
    figure = f'figures/{osp.basename(path)[:-len(".json")]}.png'
    assert figure in page
    # the table is the last one before the figure
    table = page[:page.index(figure)].rsplit('\n\n|', 1)[-1]
    for row in load(path)['methods']:
        cell = ' / '.join(f'{row["ap"][str(s)]:.1f}' for s in row['seeds'])
        assert f'| {cell} |' in table, (row['name'], cell)
