"""The comparison figure: short labels (or the user's), the teacher and
student lines labelled, the share of the gap closed written per config."""
import json
import subprocess
import sys

import pytest

from sea_kd.analysis.comparison_plot import (comparison_figure, parse_labels,
                                             short_label)

from ..tools.helpers import REPO


def summary():
    row = dict(role='method', std=0.5, seeds=[0, 1])
    return dict(metric='coco/bbox_mAP', teacher=20.0, methods=[
        dict(row, name='retinanet_r18-w16_synthetic', role='student',
             ap={'0': 9.5, '1': 10.5}, mean=10.0, gap_closed=None),
        dict(row, name='fi_retinanet_r18_to_r18-w16_synthetic',
             ap={'0': 11.5, '1': 12.5}, mean=12.0, gap_closed=0.2),
        dict(row, name='tbd-first-gs90', ap={'0': 14.5, '1': 15.5},
             mean=15.0, gap_closed=0.5),
    ])


def test_short_labels_follow_openmmlab_config_names():
    assert short_label('fi_retinanet_r18_to_r18-w16_synthetic') == 'fi'
    assert short_label('crosskd-pkd_gfl_r18_to_r18-w16_synthetic') == \
        'crosskd-pkd'
    assert short_label('tbd-first-gs90') == 'tbd-first-gs90'
    assert short_label('retinanet_r18-w16_synthetic', 'student') == 'student'


def test_parse_labels_and_its_errors():
    assert parse_labels(['fi=FI', 'a=b=c']) == {'fi': 'FI', 'a': 'b=c'}
    for bad in ('fi', '=FI', 'fi='):
        with pytest.raises(ValueError, match='NAME=LABEL'):
            parse_labels([bad])


def test_figure_labels_lines_and_gap_shares():
    fig = comparison_figure(summary(), {'tbd-first-gs90': 'TBD balanced'})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        'student', 'fi', 'TBD balanced']
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        'teacher 20.0', 'student 10.0']
    # one gap share per method, none for the student
    assert [t.get_text() for t in ax.texts] == ['20%', '50%']
    # the interval of n = 2, std 0.5: t(0.975, 1) * 0.5 / sqrt(2)
    bars = [c for c in ax.containers if hasattr(c, 'lines')]
    low, high = sorted(cap.get_ydata()[0] for cap in bars[1].lines[1])
    assert high - 12.0 == pytest.approx(12.7062 * 0.5 / 2**0.5, rel=1e-4)
    assert 12.0 - low == pytest.approx(high - 12.0)


def test_the_tool_draws_a_stored_comparison_again(tmp_path):
    data = dict(summary(), labels={'fi_retinanet_r18_to_r18-w16_synthetic':
                                   'feature imitation'})
    (tmp_path / 'comparison.json').write_text(json.dumps(data))
    out = tmp_path / 'figure.png'
    proc = subprocess.run(
        [sys.executable, 'tools/plot_comparison.py',
         tmp_path / 'comparison.json', out, '--labels',
         'retinanet_r18-w16_synthetic=baseline'],
        cwd=REPO, capture_output=True, text=True,
        env={'PYTHONPATH': REPO, 'PATH': ''})
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    bad = subprocess.run(
        [sys.executable, 'tools/plot_comparison.py',
         tmp_path / 'comparison.json', out, '--labels', 'fi'], cwd=REPO,
        capture_output=True, text=True, env={'PYTHONPATH': REPO, 'PATH': ''})
    assert bad.returncode != 0 and 'NAME=LABEL' in bad.stderr


def test_clashing_short_labels_fall_back_to_names_and_unknown_labels_fail():
    data = summary()
    data['methods'].append(dict(
        data['methods'][1], name='fi_faster-rcnn_r18_to_r18-w16_synthetic'))
    fig = comparison_figure(data)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ['student', 'fi_retinanet_r18_to_r18-w16_synthetic',
                     'tbd-first-gs90',
                     'fi_faster-rcnn_r18_to_r18-w16_synthetic']
    with pytest.raises(ValueError, match='not configs of the comparison'):
        comparison_figure(summary(), {'nope': 'x'})
