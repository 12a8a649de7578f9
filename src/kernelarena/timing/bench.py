"""Interleaved timing of a candidate against a baseline, each in its own worker.

Rounds alternate the order (AB, BA, AB, ...) so that drift cancels; each round is a batch of calls
on rotated input sets, with the cache flushed between calls unless ``warm`` is asked for. The
parent's wall clock brackets every batch: a worker that reports more time than elapsed, or a batch
span that disagrees with the parent's clock, is rejected as tampering. A sample of the timed calls'
outputs (positions drawn from a secret seed) is checked against the reference.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kernelarena.sandbox.process import WorkerFailure
from kernelarena.timing import stats
from kernelarena.types import Measurement, TimingOptions
from kernelarena.verify.compare import compare
from kernelarena.worker_client import ReferenceFor, SetupReply, SetupTiming, TimeBatch, WorkerClient

log = logging.getLogger(__name__)


def flush_bytes() -> int:
    """Cold-cache buffer: :func:`kernelarena.hw.profile.flush_buffer_bytes` (2x LLC, capped)."""
    from kernelarena.hw.profile import flush_buffer_bytes

    return flush_buffer_bytes()


@dataclass(frozen=True)
class TimingInputs:
    """What both sides are timed on: the headline variant's weights and rotated input sets."""

    init_inputs: list[Any]
    state_dict: dict[str, Any]
    input_sets: list[list[Any]]
    references: list[Any]  # reference outputs per input set
    natives: list[Any]
    atol: float | None = None
    rtol: float | None = None
    task_path: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    perturb: list[int] | None = None
    float64: bool = True


@dataclass
class Side:
    name: str
    worker: WorkerClient
    check_samples: bool
    rounds: list[list[float]] = field(default_factory=list)


@dataclass(frozen=True)
class PairTiming:
    candidate: Measurement
    baseline: Measurement
    speedup: float
    speedup_ci: tuple[float, float]
    unstable: bool
    reasons: tuple[str, ...]
    flags: tuple[str, ...]


class TimingRejected(Exception):
    pass


def setup_side(
    worker: WorkerClient,
    inputs: TimingInputs,
    options: TimingOptions,
    threads: int,
    compile_mode: str | None = None,
    warmup_s: float = 0.3,
) -> SetupReply:
    """Send the weights and input sets; the worker then warms up (at least 3 calls, ``warmup_s``)."""
    reply = worker.setup_timing(
        SetupTiming(
            init_inputs=inputs.init_inputs,
            state_dict=inputs.state_dict,
            input_sets=inputs.input_sets,
            threads=threads,
            flush_bytes=flush_bytes() if options.cache == "cold" else 0,
            compile_mode=compile_mode,
            warmup_s=warmup_s,
        ),
        timeout_s=900 if compile_mode else None,
    )
    if reply.error:
        raise TimingRejected(f"{worker.role} setup failed: {reply.error}")
    return reply


def _batch(
    side: Side,
    n_calls: int,
    offset: int,
    options: TimingOptions,
    inputs: TimingInputs,
    rng: random.Random,
    gap_ms: float,
    reference: WorkerClient | None = None,
) -> tuple[list[float], list[str], float]:
    """One timed batch: per-call ms, problems found, and the batch's wall ms (flushes and gaps
    included). ``reference`` (the reference worker) checks the sampled calls' outputs."""
    sample = [rng.randrange(n_calls)] if side.check_samples and reference is not None else []
    t0 = time.perf_counter()
    reply = side.worker.time_batch(
        TimeBatch(
            n_calls=n_calls,
            offset=offset,
            sample=sample,
            cache=options.cache,
            gap_ms=gap_ms,
            gap_seed=rng.randrange(1 << 30),
            nudge=True,
            perturb=inputs.perturb,
        )
    )
    wall_ms = (time.perf_counter() - t0) * 1e3
    problems = []
    if reply.error:
        raise TimingRejected(f"{side.name} failed while being timed: {reply.error}")
    times = [float(t) for t in reply.times_ms]
    if len(times) != n_calls or any(not (t >= 0) for t in times):
        raise TimingRejected(f"{side.name}: the worker reported malformed timings")
    total, span = sum(times), float(reply.span_ms)
    # The worker's clock may be patched by candidate code; the parent's cannot.
    if total > wall_ms * 1.02 + 1.0 or span > wall_ms * 1.02 + 1.0:
        problems.append(
            f"timer: {side.name} reported {total:.1f} ms of calls in a batch the parent clocked at "
            f"{wall_ms:.1f} ms (tampered clock)"
        )
    if not sample and span < 0.5 * wall_ms - 20.0:
        problems.append(
            f"timer: {side.name}'s batch span {span:.1f} ms disagrees with the parent's {wall_ms:.1f} ms "
            "(tampered clock)"
        )
    if reply.leaked_threads:
        problems.append(f"escape: {side.name} left threads running during timing: {reply.leaked_threads[:3]}")
    for key, s in reply.samples.items():
        assert reference is not None
        ref = reference.reference_for(
            ReferenceFor(
                task_path=inputs.task_path,
                overrides=inputs.overrides,
                init_inputs=inputs.init_inputs,
                state_dict=inputs.state_dict,
                inputs=s.inputs,
                float64=inputs.float64,
            )
        )
        if ref.error:
            problems.append(f"the reference failed on a sampled timed call: {ref.error}")
            continue
        res = compare(s.outputs, ref.expected, ref.native, atol=inputs.atol, rtol=inputs.rtol)
        if not res.ok:
            problems.append(
                f"a timed call (#{key} of a batch) returned wrong results (work skipped or cached across "
                f"calls?): {res.reason}"
            )
    return times, problems, wall_ms


def _measurement(rounds: list[list[float]], options: TimingOptions, threads: int) -> Measurement:
    flat = [x for r in rounds for x in r]
    return Measurement(
        median_ms=stats.median(flat),
        iqr_ms=stats.iqr(flat),
        ci_ms=stats.bootstrap_median_ci(rounds, n_boot=400, seed=options.seed),
        calls=len(flat),
        rounds=len(rounds),
        cache=options.cache,
        mode=options.mode,
        threads=threads,
        samples_ms=tuple(flat),
    )


def _calibrate(side: Side, options: TimingOptions, inputs: TimingInputs) -> tuple[int, float]:
    """A short batch gives the per-call time, hence (calls per round within the budget, call ms)."""
    times, _, wall = _batch(side, 3, 0, options, inputs, random.Random(0), 0.0)
    per_call_ms = max(wall / 3, 1e-3)  # including the cold flush: sizes batches to the budget
    per_round_s = options.budget_s / max(options.min_rounds, 1)
    return max(3, min(2000, int(per_round_s * 1e3 / per_call_ms))), stats.median(times)


def time_one(
    worker: WorkerClient,
    inputs: TimingInputs,
    options: TimingOptions,
    threads: int,
    *,
    secret: int,
    reference: WorkerClient | None = None,
) -> Measurement:
    """Time one (already set-up) side alone: the search's screening measurement.

    The same batches as :func:`time_pair` (parent clock cross-checks, input nudging, a sampled
    output check against ``reference`` in the first round), but no baseline interleaved: its median
    drifts with the machine's load, so figures compared across time come from :func:`time_pair`.
    """
    rng = random.Random(secret ^ 0x5C1)
    side = Side("candidate", worker, check_samples=reference is not None)
    try:
        n, _ = _calibrate(side, options, inputs)
        deadline = time.monotonic() + options.budget_s
        offset = 0
        while len(side.rounds) < max(options.min_rounds, 1) or (
            time.monotonic() < deadline and len(side.rounds) < options.max_rounds
        ):
            checker = reference if not side.rounds else None
            times, problems, _ = _batch(side, n, offset, options, inputs, rng, 0.0, checker)
            if problems:
                raise TimingRejected(problems[0])
            side.rounds.append(times)
            offset += n
    except WorkerFailure as exc:
        raise TimingRejected(f"candidate worker {exc} while being timed") from None
    return _measurement(side.rounds, options, threads)


def time_pair(
    candidate: WorkerClient,
    baseline: WorkerClient,
    inputs: TimingInputs,
    options: TimingOptions,
    threads: int,
    *,
    secret: int,
    baseline_checks: bool = False,
    progress: Callable[[str], None] | None = None,
    reference: WorkerClient | None = None,
    sample_every: int = 3,
) -> PairTiming:
    """Interleave batches of the two (already set-up) workers until the speedup CI is tight."""
    rng = random.Random(secret ^ 0x71E)
    cand = Side("candidate", candidate, check_samples=True)
    base = Side("baseline", baseline, check_samples=baseline_checks)
    calibrated = {side.name: _calibrate(side, options, inputs) for side in (base, cand)}
    n = min(c[0] for c in calibrated.values())  # same number of calls per round on both sides
    gap_ms = {k: (c[1] if options.mode == "server" else 0.0) for k, c in calibrated.items()}
    reasons: list[str] = []
    flags: list[str] = []
    # a noisy run is extended until 4x the budget of both sides has passed (at least 2 s): a fixed
    # 10 s more made a 0.5 s budget last 14 s on the tasks whose CI stays wide (the main job's time)
    deadline = time.monotonic() + max(4 * options.budget_s * 2, 2.0)
    offset = 0
    speedup, ci = float("nan"), (float("nan"), float("nan"))
    r = 0
    while True:
        order = (base, cand) if r % 2 == 0 else (cand, base)
        for side in order:
            try:
                checker = reference if (r % sample_every == sample_every - 1 or r == 0) else None
                times, problems, _ = _batch(side, n, offset, options, inputs, rng, gap_ms[side.name], checker)
            except WorkerFailure as exc:
                raise TimingRejected(f"{side.name} worker {exc} while being timed") from None
            side.rounds.append(times)
            for p in problems:
                if p not in reasons:
                    reasons.append(p)
        offset += n
        r += 1
        if reasons:
            break
        if r >= options.min_rounds:
            speedup, ci = stats.speedup_ci(base.rounds, cand.rounds, n_boot=400, seed=options.seed)
            wide = stats.relative_width(ci, speedup) > options.max_ci_rel_width
            if not wide or r >= options.max_rounds or time.monotonic() > deadline:
                break
        if progress:
            progress(f"timing round {r}")
    if r < options.min_rounds or speedup != speedup:
        speedup, ci = stats.speedup_ci(base.rounds, cand.rounds, n_boot=400, seed=options.seed)
    unstable = stats.relative_width(ci, speedup) > options.max_ci_rel_width
    if unstable:
        flags.append(
            f"unstable: speedup CI [{ci[0]:.3g}, {ci[1]:.3g}] is wider than "
            f"{options.max_ci_rel_width:.0%} after {r} rounds (noisy machine?)"
        )
    return PairTiming(
        candidate=_measurement(cand.rounds, options, threads),
        baseline=_measurement(base.rounds, options, threads),
        speedup=speedup,
        speedup_ci=ci,
        unstable=unstable,
        reasons=tuple(reasons),
        flags=tuple(flags),
    )
