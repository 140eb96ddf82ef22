import math

import numpy as np
import pytest

from greenbench.stats import percentiles_ms, summarize, wilson_interval


def test_summarize_matches_hand_computation():
    s = summarize([10.0, 12.0, 11.0, 13.0, 9.0])
    assert s.n == 5 and s.mean == pytest.approx(11.0)
    assert s.std == pytest.approx(math.sqrt(2.5))  # sample std, ddof=1
    assert s.cv == pytest.approx(math.sqrt(2.5) / 11.0)
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4)
    assert s.ci95 == pytest.approx((11.0 - half, 11.0 + half))
    assert (s.min, s.max) == (9.0, 13.0)


def test_single_sample_has_no_interval_and_zero_mean_no_cv():
    s = summarize([3.0])
    assert s.ci95 is None and s.std is None and s.cv is None
    assert summarize([-1.0, 1.0]).cv is None


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        summarize(bad)


def test_interval_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    few = summarize(rng.normal(1.0, 0.1, 5))
    many = summarize(rng.normal(1.0, 0.1, 500))
    assert many.half_width < few.half_width / 5


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = wilson_interval(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.9630, abs=1e-4)


@pytest.mark.parametrize("correct,total", [(1, 0), (-1, 5), (6, 5)])
def test_wilson_rejects_bad_counts(correct, total):
    with pytest.raises(ValueError):
        wilson_interval(correct, total)


def test_percentiles_are_in_milliseconds():
    p = percentiles_ms(np.arange(1, 101) / 1000.0)  # 1..100 ms
    assert p[50] == pytest.approx(50.5)
    assert p[99] == pytest.approx(99.01)
    assert p[50] < p[90] < p[95] < p[99]


def test_interval_of_a_non_negative_quantity_stops_at_zero():
    s = summarize([0.1, 1.0, 5.0])  # so spread that mean - t*s/sqrt(n) < 0
    assert s.ci95[0] == 0.0 and s.ci95[1] > s.mean
    signed = summarize([-1.0, 1.0, 5.0])  # a quantity that may be negative keeps its t-interval
    assert signed.ci95[0] < 0
