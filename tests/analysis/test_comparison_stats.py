"""The comparison statistics against values computed by hand."""
import math

import pytest

from sea_kd.analysis.comparison_stats import (gap_closed, mean_std,
                                              paired_difference,
                                              t_quantile_975)


def test_paired_difference_by_hand():
    method = {0: 10.0, 1: 12.0, 2: 11.0, 7: 50.0}   # seed 7 is unpaired
    student = {0: 9.0, 1: 10.0, 2: 11.0}
    diff = paired_difference(method, student)
    # differences 1, 2, 0: mean 1, sample std 1, t(2) = 4.303
    assert diff['seeds'] == [0, 1, 2] and diff['n'] == 3
    assert diff['mean'] == pytest.approx(1.0)
    assert diff['std'] == pytest.approx(1.0)
    half = 4.302653 / math.sqrt(3)
    assert diff['ci_low'] == pytest.approx(1.0 - half)
    assert diff['ci_high'] == pytest.approx(1.0 + half)
    assert diff['wins'] == 2   # a tie is not a win


def test_one_seed_has_no_interval_and_no_shared_seed_no_difference():
    diff = paired_difference({3: 5.0}, {3: 4.0})
    assert diff['mean'] == 1.0 and diff['std'] == 0.0
    assert diff['ci_low'] is None and diff['ci_high'] is None
    assert paired_difference({1: 5.0}, {2: 4.0}) is None


def test_mean_std_and_gap_closed_by_hand():
    stats = mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats['mean'] == 5.0
    assert stats['std'] == pytest.approx(math.sqrt(32 / 7))
    assert gap_closed(11.0, 10.0, 20.0) == pytest.approx(0.1)
    assert gap_closed(9.0, 10.0, 20.0) == pytest.approx(-0.1)
    assert gap_closed(12.0, 10.0, 9.0) is None  # teacher not better
    with pytest.raises(ValueError):
        mean_std([])


def test_a_value_that_is_not_finite_gives_statistics_that_are_not():
    # a damaged metrics file's NaN must not crash the table at the end of a
    # comparison: it shows as nan
    stats = mean_std([8.0, math.nan])
    assert math.isnan(stats['mean']) and math.isnan(stats['std'])
    assert math.isinf(mean_std([1.0, math.inf])['mean'])
    diff = paired_difference({0: math.nan, 1: 9.0}, {0: 8.0, 1: 8.0})
    assert math.isnan(diff['mean']) and diff['wins'] == 1


def test_t_quantiles():
    # printed tables of Student's t (two-sided 95 %), to their 3 decimals
    for df, value in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228),
                      (30, 2.042), (40, 2.021), (120, 1.980)):
        assert t_quantile_975(df) == pytest.approx(value, abs=5e-4), df
    with pytest.raises(ValueError):
        t_quantile_975(0)
