"""Timing statistics: round-paired bootstrap CIs behave as they should on synthetic data."""

import random

import pytest

from kernelarena.timing import stats

pytestmark = pytest.mark.unit


def _rounds(rng: random.Random, base: float, n_rounds: int, drift: float = 0.0) -> list[list[float]]:
    return [
        [base * (1 + drift * r) * rng.lognormvariate(0, 0.05) for _ in range(20)] for r in range(n_rounds)
    ]


def test_aa_ci_contains_one() -> None:
    rng = random.Random(1)
    a, b = _rounds(rng, 1.0, 12), _rounds(rng, 1.0, 12)
    point, (lo, hi) = stats.speedup_ci(a, b, seed=0)
    assert lo <= 1.0 <= hi and abs(point - 1) < 0.03


def test_real_difference_excludes_one_even_with_drift() -> None:
    rng = random.Random(2)
    # both sides drift by 3% per round: interleaving cancels it
    base, cand = _rounds(rng, 2.0, 12, drift=0.03), _rounds(rng, 1.0, 12, drift=0.03)
    point, (lo, hi) = stats.speedup_ci(base, cand, seed=0)
    assert 1.8 < lo <= point <= hi < 2.2
    assert stats.faster_beyond_noise((lo, hi))


def test_median_ci_and_iqr() -> None:
    rounds = [[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]]
    lo, hi = stats.bootstrap_median_ci(rounds, n_boot=200)
    assert 1.0 <= lo <= 2.0 <= hi <= 3.0
    assert stats.iqr([1, 2, 3, 4, 5, 6, 7, 8]) > 0


def test_mismatched_rounds_rejected() -> None:
    with pytest.raises(ValueError):
        stats.speedup_ci([[1.0]], [[1.0], [2.0]])
