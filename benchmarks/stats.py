"""Median and spread of timed samples, and the clock the benchmarks use."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

clock = time.perf_counter


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of an already sorted sequence."""
    if not sorted_xs:
        raise ValueError("no samples")
    pos = (len(sorted_xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> dict[str, float | int | list[float]]:
    """median, min, max, q1, q3, iqr, relative spread ((max - min) / median) and the samples."""
    xs = sorted(float(x) for x in samples)
    if not xs:
        raise ValueError("no samples")
    med = statistics.median(xs)
    q1, q3 = quantile(xs, 0.25), quantile(xs, 0.75)
    return {
        "median": med,
        "min": xs[0],
        "max": xs[-1],
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "spread": (xs[-1] - xs[0]) / med if med else 0.0,
        "n": len(xs),
        "samples": [float(x) for x in samples],
    }


def decode_rates(
    batch: int, new_tokens: int, first_s: Sequence[float], total_s: Sequence[float]
) -> list[float]:
    """Decode tokens/s of each timed generation: the `new_tokens - 1` tokens after the first, over the
    generation's time less the median time to the first token (timed in separate one-token runs).

    Subtracting the median rather than each repeat's own first-token time keeps one noisy one-token
    run from making a decode rate absurd (a near-zero difference read as billions of tokens/s).
    """
    first = statistics.median(first_s)
    return [batch * (new_tokens - 1) / max(t - first, 1e-9) for t in total_s]
