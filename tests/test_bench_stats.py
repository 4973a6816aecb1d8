"""Median and spread of timed samples."""

from __future__ import annotations

import pytest

from jai.benchmarks.stats import quantile, summarize


def test_summary_of_odd_samples():
    s = summarize([5.0, 1.0, 3.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 5.0
    assert s["q1"] == 2.0 and s["q3"] == 4.0 and s["iqr"] == 2.0
    assert s["spread"] == pytest.approx(4 / 3)
    assert s["n"] == 3 and s["samples"] == [5.0, 1.0, 3.0]  # in the order they were taken


def test_summary_of_even_samples_matches_numpy():
    np = pytest.importorskip("numpy")
    xs = [4.0, 1.0, 9.0, 2.5]
    s = summarize(xs)
    assert s["median"] == pytest.approx(np.median(xs))
    assert s["q1"] == pytest.approx(np.quantile(xs, 0.25)) and s["q3"] == pytest.approx(np.quantile(xs, 0.75))


def test_single_sample_and_empty():
    s = summarize([2.0])
    assert s["median"] == s["min"] == s["max"] == 2.0 and s["iqr"] == 0.0 and s["spread"] == 0.0
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_decode_rates_subtract_the_median_first_token_time():
    from jai.benchmarks.stats import decode_rates

    # batch 2, 11 new tokens: 20 decoded tokens after the first, in (total - median first) seconds
    rates = decode_rates(2, 11, [0.1, 0.3, 0.2], [1.2, 2.2, 0.2])
    assert rates[0] == pytest.approx(20 / 1.0) and rates[1] == pytest.approx(20 / 2.0)
    assert rates[2] == pytest.approx(20 / 1e-9)  # a generation no longer than the first token: clamped
