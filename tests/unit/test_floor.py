"""The physical-floor decision (timing/floor.py): when an implausible time came from results
reused across calls. Regression (issue 10): a memo keyed on a fingerprint the one-element nudge
misses was only flagged (`implausible speed ...; re-verified ...: pass`), never rejected."""

import pytest

from kernelarena.timing.floor import MIN_GAP_MS, REUSE_RATIO, reused_results

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def test_memo_speed_that_does_not_survive_fresh_inputs_is_rejected() -> None:
    # measured on floor_memo_fingerprint: timed median 0.054 ms, fresh single calls 28.7 ms
    why = reused_results(0.054, [28.9, 28.7, 27.5])
    assert why is not None and "results reused across calls" in why and "531x" in why


def test_honest_kernel_within_the_ratio_passes() -> None:
    # an honest kernel: first calls on new data a few times slower at most (cache, page faults)
    assert reused_results(28.2, [30.1, 29.0, 35.0]) is None
    assert reused_results(1.0, [REUSE_RATIO * 0.99] * 3) is None
    assert reused_results(1.0, [REUSE_RATIO * 1.01] * 3) is not None


def test_median_not_one_slow_call() -> None:
    assert reused_results(1.0, [1.1, 50.0, 1.2]) is None  # one preempted call is not reuse


def test_microsecond_kernels_need_an_absolute_gap() -> None:
    assert reused_results(0.002, [0.03, 0.03, 0.03]) is None  # 15x, but 28 us: call jitter
    assert reused_results(0.002, [0.002 + 2 * MIN_GAP_MS] * 3) is not None


def test_no_fresh_times_no_verdict() -> None:
    assert reused_results(0.01, []) is None
