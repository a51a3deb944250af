"""The data of the comparison figures in docs/figures/summaries/: each
summary's statistics are those of its own per-seed values, and each has its
figure next to it, so a figure never shows numbers its data do not give."""
import functools
import glob
import json
import os.path as osp

import pytest

from sea_kd.analysis.comparison import summary_of

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SUMMARIES = sorted(glob.glob(osp.join(ROOT, 'docs', 'figures', 'summaries',
                                      '*.json')))


def test_there_are_summaries():
    assert len(SUMMARIES) >= 19


@pytest.mark.parametrize('path', SUMMARIES, ids=osp.basename)
def test_summary_statistics_follow_from_its_per_seed_values(path):
    with open(path) as f:
        summary = json.load(f)
    figure = osp.join(ROOT, 'docs', 'figures',
                      osp.basename(path)[:-len('.json')] + '.png')
    assert osp.isfile(figure), f'{path} has no figure {figure}'
    by_name = {row['name']: {int(s): ap for s, ap in row['ap'].items()}
               for row in summary['methods']}
    roles = {row['name']: row['role'] for row in summary['methods']}
    pairs = [(p['config'], p['baseline']) for p in summary.get('pairs', [])]
    again = summary_of(by_name, roles, metric=summary['metric'],
                       teacher_ap=summary['teacher'], fi_name=summary['fi'],
                       pairs=pairs)
    # within 0.001 AP: the older summaries were written with a tabulated t
    # quantile, which differs from scipy's in the fifth digit
    approx = functools.partial(pytest.approx, abs=1e-3)
    for row, want in zip(summary['methods'], again['methods']):
        for key in ('mean', 'std', 'gap_closed'):
            assert row[key] == approx(want[key]), (row['name'], key)
        for key in ('vs_student', 'vs_fi'):
            if want[key] is None:
                assert row[key] is None, (row['name'], key)
            else:
                for stat in ('mean', 'ci_low', 'ci_high', 'wins'):
                    assert row[key][stat] == approx(want[key][stat]), \
                        (row['name'], key, stat)
