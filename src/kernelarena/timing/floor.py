"""Times below the physical floor: does the speed survive inputs no earlier call saw?

``karena bench`` calls a time implausible when it beats the roofline (bytes over the bandwidth of
the level that holds the working set, FLOPs over the peak) or the baseline by more than 100x. A
profile measured on a busy machine underestimates the peaks, so the roofline alone never rejects.
What it triggers (after a second, independent verification) is this check: the candidate, warmed up
on the timing input sets, is called once on each of a few input sets drawn anew (never seen by any
earlier call, so nothing can be reused), under the same cache state. An honest kernel takes about
its timed median there. A kernel whose timed speed came from results reused across calls (a memo
keyed on a fingerprint that the one-element nudge between timed calls misses, work skipped on
repeated inputs) takes its honest time, many times the timed median: rejected.

Limit: it runs only when the time is implausible; a memo that gains less is left to the nudge and
the sampled checks of timed calls. On never-seen inputs a kernel can only be fast by skipping work:
a fast median needs two of the three fresh calls to skip, and the one checked call is one of them
with probability 2/3 (or more).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import replace
from typing import Any

from kernelarena.timing.bench import Side, TimingInputs, _batch, setup_side
from kernelarena.types import TimingOptions

FRESH_SETS = 3
WARMUP_CALLS = 3  # the worker's warm-up makes at least 3 calls, cycling over the sets given
REUSE_RATIO = 10.0  # fresh-input median over timed median beyond which the speed was reused
MIN_GAP_MS = 0.05  # and by at least this much (a few-microsecond kernel's jitter is not reuse)


def reused_results(timed_median_ms: float, fresh_ms: list[float], ratio: float = REUSE_RATIO) -> str | None:
    """The rejection when single calls on never-seen inputs are far slower than the timed median.

    >>> reused_results(0.06, [8.1, 7.9, 8.4]) is not None
    True
    >>> reused_results(5.0, [6.1, 5.2, 5.5]) is None
    True
    """
    if not fresh_ms:
        return None
    fresh = statistics.median(fresh_ms)
    if fresh > ratio * timed_median_ms and fresh - timed_median_ms > MIN_GAP_MS:
        return (
            f"results reused across calls: single calls on input sets no earlier call saw took "
            f"{fresh:.3g} ms (median of {len(fresh_ms)}), {fresh / max(timed_median_ms, 1e-9):.0f}x "
            f"the timed median of {timed_median_ms:.3g} ms"
        )
    return None


def fresh_input_ms(
    cand: Any,
    ref: Any,
    timed: TimingInputs,
    fresh: TimingInputs,
    options: TimingOptions,
    threads: int,
    secret: int,
) -> tuple[list[float], list[str]]:
    """Per-call ms of the candidate on each of ``fresh``'s input sets, called once each.

    The candidate's timed model is set up again on ``WARMUP_CALLS`` of the ``timed`` sets followed
    by the fresh ones; the worker's warm-up (no time budget) makes exactly those first calls, so
    lazy initialization (packing weights, thread pools) is paid before the fresh sets are seen.
    Returns the times and the problems the batch found (its sampled call is checked too).
    """
    warm = [timed.input_sets[i % len(timed.input_sets)] for i in range(WARMUP_CALLS)]
    both = replace(
        fresh,
        input_sets=warm + list(fresh.input_sets),
        references=[None] * WARMUP_CALLS + list(fresh.references),
        natives=[None] * WARMUP_CALLS + list(fresh.natives),
    )
    setup_side(cand, both, options, threads, warmup_s=0.0)
    side = Side("candidate", cand, check_samples=True)
    n = len(fresh.input_sets)
    times, problems, _ = _batch(
        side, n, WARMUP_CALLS, options, both, random.Random(secret), 0.0, reference=ref
    )
    return times, problems
