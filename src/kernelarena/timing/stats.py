"""Robust statistics for timings: medians, IQR, bootstrap confidence intervals of a speedup.

Speedups are computed from interleaved rounds: round r has the baseline's and the candidate's
per-call times measured back to back, so slow drift of the machine affects both. The bootstrap
resamples whole rounds (keeping each round's pairing), which is what makes the interval honest
when the machine's speed wanders.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def iqr(xs: Sequence[float]) -> float:
    if len(xs) < 4:
        return max(xs) - min(xs) if xs else 0.0
    q = statistics.quantiles(xs, n=4)
    return q[2] - q[0]


def _percentile(sorted_xs: Sequence[float], p: float) -> float:
    if not sorted_xs:
        return float("nan")
    k = (len(sorted_xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (k - lo)


def bootstrap_median_ci(
    rounds: Sequence[Sequence[float]], *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """CI of the median per-call time, resampling whole rounds."""
    rng = random.Random(seed)
    meds = []
    for _ in range(n_boot):
        pick = [rounds[rng.randrange(len(rounds))] for _ in rounds]
        meds.append(statistics.median([x for r in pick for x in r]))
    meds.sort()
    a = (1 - confidence) / 2
    return _percentile(meds, a), _percentile(meds, 1 - a)


def speedup_ci(
    baseline_rounds: Sequence[Sequence[float]],
    candidate_rounds: Sequence[Sequence[float]],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Speedup = median(baseline) / median(candidate), with a round-paired bootstrap CI."""
    if len(baseline_rounds) != len(candidate_rounds) or not baseline_rounds:
        raise ValueError("need the same, non-zero number of rounds on both sides")
    point = median([x for r in baseline_rounds for x in r]) / median([x for r in candidate_rounds for x in r])
    rng = random.Random(seed)
    n = len(baseline_rounds)
    ratios = []
    for _ in range(n_boot):
        idx = [rng.randrange(n) for _ in range(n)]
        b = statistics.median([x for i in idx for x in baseline_rounds[i]])
        c = statistics.median([x for i in idx for x in candidate_rounds[i]])
        ratios.append(b / c)
    ratios.sort()
    a = (1 - confidence) / 2
    return point, (_percentile(ratios, a), _percentile(ratios, 1 - a))


def relative_width(ci: tuple[float, float], point: float) -> float:
    return (ci[1] - ci[0]) / point if point else float("inf")


def faster_beyond_noise(new_ci: tuple[float, float]) -> bool:
    """A challenger replaces the incumbent only if the whole CI of (incumbent/challenger) is > 1."""
    return new_ci[0] > 1.0
