"""Statistics of a multi-seed comparison: paired differences with a 95 %
confidence interval, wins, and the share of the teacher-student gap closed."""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np
from scipy.stats import t as student_t


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom
    (``scipy.stats.t``), the half-width factor of a two-sided 95 % interval.
    """
    if df < 1:
        raise ValueError(f'degrees of freedom must be >= 1, got {df}')
    return float(student_t.ppf(0.975, df))


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (``n − 1``; 0 for one value), by
    numpy: a value that is not finite gives a mean and deviation that are
    not finite, not an error."""
    if not values:
        raise ValueError('no values')
    n = len(values)
    array = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid='ignore', over='ignore'):  # inf - inf: nan
        return dict(mean=float(array.mean()),
                    std=float(array.std(ddof=1)) if n > 1 else 0.0, n=n)


def paired_difference(method: Dict[int, float],
                      baseline: Dict[int, float]) -> Optional[dict]:
    """``method − baseline`` on the seeds both have.

    Args:
        method: AP by seed.
        baseline: AP by seed (same seed: same data order and
            initialisation).

    Returns:
        ``mean``, ``std`` and ``n`` of the per-seed differences, the 95 %
        interval ``ci_low``/``ci_high`` of their mean (Student's t; ``None``
        with one seed), ``wins`` (seeds where the method is higher) and
        ``seeds``; ``None`` when no seed is shared.
    """
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        return None
    diffs = [method[s] - baseline[s] for s in seeds]
    stats = mean_std(diffs)
    if stats['n'] > 1:
        half = t_quantile_975(stats['n'] - 1) * stats['std'] / math.sqrt(
            stats['n'])
        low, high = stats['mean'] - half, stats['mean'] + half
    else:
        low = high = None
    return dict(stats, ci_low=low, ci_high=high,
                wins=sum(d > 0 for d in diffs), seeds=seeds)


def gap_closed(method_ap: float, student_ap: float,
               teacher_ap: float) -> Optional[float]:
    """``(AP_m − AP_s) / (AP_t − AP_s)``; ``None`` when the teacher is not
    better than the student."""
    gap = teacher_ap - student_ap
    if gap <= 0:
        return None
    return (method_ap - student_ap) / gap
