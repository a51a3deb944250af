"""The figure of a comparison: each seed's AP, each config's mean with its
95 % interval, the teacher's and the student's means as lines and the
share of the teacher-student gap each config closes."""
from __future__ import annotations

from typing import Mapping, Optional

from .comparison_stats import t_quantile_975


def short_label(name: str, role: str = 'method') -> str:
    """The label of a config in the figure: ``'student'`` for the student,
    the method for a config named by OpenMMLab's pattern
    ``<method>_<teacher>_to_<student>_...`` (``fi_retinanet_r18_to_r18-w16
    _synthetic`` -> ``fi``), the name otherwise."""
    if role == 'student':
        return 'student'
    if '_to_' in name:
        return name.split('_', 1)[0]
    return name


def tick_labels(rows, labels: Mapping[str, str]) -> list:
    """Each row's label: the user's, else :func:`short_label`, else (where
    two short labels would be the same) the config name."""
    short = [short_label(r['name'], r.get('role', '')) for r in rows]
    return [labels.get(r['name'], s if short.count(s) == 1 else r['name'])
            for r, s in zip(rows, short)]


def parse_labels(items) -> dict:
    """``['fi=FI', ...]`` -> ``{'fi': 'FI'}`` (``--labels`` of the tools).

    Raises:
        ValueError: An item is not ``NAME=LABEL``.
    """
    labels = {}
    for item in items:
        name, sep, label = item.partition('=')
        if not sep or not name or not label:
            raise ValueError(f'A label must be NAME=LABEL (config name, '
                             f'then its label in the figure), got {item!r}.')
        labels[name] = label
    return labels


def comparison_figure(summary: dict,
                      labels: Optional[Mapping[str, str]] = None):
    """The matplotlib figure of ``summary`` (``tools/compare.py``'s
    ``comparison.json``).

    Args:
        summary: The comparison: ``metric``, ``teacher`` (mean or
            ``None``) and ``methods``, rows with ``name``, ``role``,
            ``ap`` (per seed), ``mean``, ``std`` and ``gap_closed``.
        labels: Labels by config name, overriding :func:`short_label`.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    labels = dict(labels or {})
    rows = summary['methods']
    unknown = sorted(set(labels) - {r['name'] for r in rows})
    if unknown:
        raise ValueError(
            f'Labels for {unknown}, which are not configs of the comparison '
            f'({", ".join(r["name"] for r in rows)}): use their names.')
    fig, ax = plt.subplots(figsize=(max(0.55 * len(rows) + 1.8, 4.0), 3.4))
    student = next((r for r in rows if r.get('role') == 'student'), None)
    for x, row in enumerate(rows):
        values = list(row['ap'].values())
        ax.scatter([x] * len(values), values, s=12, color='0.6', zorder=2)
        n = len(values)
        half = t_quantile_975(n - 1) * row['std'] / n**0.5 if n > 1 else 0
        ax.errorbar(x, row['mean'], yerr=half, fmt='o', ms=4, color='C0',
                    capsize=3, zorder=3)
        if row.get('gap_closed') is not None and row is not student:
            ax.annotate(f'{100 * row["gap_closed"]:.0f}%',
                        (x, row['mean'] + half), xytext=(0, 3),
                        textcoords='offset points', ha='center',
                        va='bottom', fontsize=7, color='C0')
    if summary.get('teacher') is not None:
        ax.axhline(summary['teacher'], color='C3', ls='--', lw=1,
                   label=f'teacher {summary["teacher"]:.1f}')
    if student is not None:
        ax.axhline(student['mean'], color='0.4', ls=':', lw=1,
                   label=f'student {student["mean"]:.1f}')
    handles = ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(loc='best', fontsize=7, framealpha=0.8,
                  title='% = gap closed', title_fontsize=7)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(tick_labels(rows, labels), rotation=35, ha='right',
                       fontsize=8)
    ax.tick_params(axis='y', labelsize=8)
    ax.set_ylabel(f'{summary["metric"]} (%)', fontsize=8)
    ax.grid(axis='y', lw=0.4, alpha=0.5)
    fig.tight_layout()
    return fig


def plot_comparison(summary: dict, out_file: str,
                    labels: Optional[Mapping[str, str]] = None) -> None:
    """Save :func:`comparison_figure` to ``out_file``."""
    import matplotlib.pyplot as plt
    fig = comparison_figure(summary, labels)
    fig.savefig(out_file, dpi=130)
    plt.close(fig)
