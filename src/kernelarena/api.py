"""The Python API: ``check``, ``bench`` and ``TuningSession``. The command line is a thin layer on it.

Example::

    import kernelarena as ka
    verdict = ka.check("rmsnorm", "my_rmsnorm.py")
    result = ka.bench("rmsnorm", "my_rmsnorm.py", baseline="eager")
    print(verdict.passed, result.speedup, result.speedup_ci)
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kernelarena import pipeline, settings
from kernelarena.backends.interface import backend_of
from kernelarena.errors import UsageError
from kernelarena.sandbox.process import WorkerFailure
from kernelarena.session import TuningSession
from kernelarena.store.keys import device_id, kernel_sources_hash, make_key, toolchain
from kernelarena.store.sqlite import Store
from kernelarena.tasks.loader import input_bytes, source_hash
from kernelarena.timing import bench as timing
from kernelarena.timing import stats
from kernelarena.types import (
    BenchResult,
    CallMetrics,
    CheckOptions,
    EvalOutcome,
    Solution,
    Task,
    TimingOptions,
    Variant,
    Verdict,
    to_jsonable,
)
from kernelarena.verify.verifier import CasePlan, make_case, new_secret, verify
from kernelarena.worker_client import CaseReply, Load, TimeBatch, WorkerClient, prestart_workers

log = logging.getLogger(__name__)

IMPLAUSIBLE_SPEEDUP = 100.0


def load_solution(path: str | Path) -> Solution:
    from kernelarena.backends.registry import detect_backend

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"solution file not found: {path}")
    return Solution(p.resolve(), source_hash(p), detect_backend(p.read_text(errors="replace")))


def _key_parts(task: Task, solution: Solution, options: CheckOptions) -> dict[str, Any]:
    return {
        "backend": solution.backend,
        "build": backend_of(solution).build_key(options),
        "task_hash": task.source_hash,
        "variants": [v.overrides for v in task.variants],
        "solution_hash": solution.source_hash,
        # threads=None means "all cores", resolved here: records made under different KARENA_THREADS
        # must not reuse each other (issue 11)
        "options": to_jsonable(
            replace(options, secret=None, threads=options.threads or settings.num_threads())
        ),
        "device": device_id(options.device),
        "toolchain": toolchain(),
        # a forced SIMD path and the shared headers/templates change the kernel without changing the
        # solution file: both are part of the key (a header edit used to reuse the old verdict)
        "cpu_isa": settings.gemm_cpu_isa(),
        "kernel_sources": kernel_sources_hash(),
    }


def _meta(task: Task, solution: Solution, baseline: str | None, options: CheckOptions) -> dict[str, Any]:
    return {
        "task": task.name,
        "task_hash": task.source_hash,
        "solution": str(solution.path),
        "solution_hash": solution.source_hash,
        "baseline": baseline,
        "device": device_id(options.device),
        "toolchain": toolchain(),
    }


def verdict_from_json(data: dict[str, Any]) -> Verdict:
    from kernelarena.types import CaseResult

    return Verdict(
        passed=data["passed"],
        reasons=tuple(data["reasons"]),
        flags=tuple(data["flags"]),
        cases=tuple(CaseResult(**c) for c in data["cases"]),
        checked=tuple(data["checked"]),
        not_checked=tuple(data["not_checked"]),
        elapsed_s=data["elapsed_s"],
        notes=tuple(data.get("notes", ())),
    )


def check(
    task: str | Path | Task,
    solution: str | Path,
    options: CheckOptions | None = None,
    *,
    store: Store | None = None,
    fresh: bool = False,
) -> Verdict:
    """Verify ``solution`` against ``task`` (a path or a built-in name). Never raises for solution
    faults (they are reasons in the verdict); raises UsageError when the command cannot run."""
    options = options or CheckOptions()
    pipeline.require_device(options.device)
    prestart_workers(options.threads)  # the zygote imports torch while the task loads
    t = pipeline.as_task(task, options.max_bytes)
    sol = load_solution(solution)
    key = make_key("check", _key_parts(t, sol, options))
    if store is not None and not fresh:
        cached = store.get(key)
        if cached is not None:
            v = verdict_from_json(cached["result"])
            return replace(v, notes=(*v.notes, "reused a stored record (use --fresh to re-run)"))
    pipeline.memory_guard(t)
    with pipeline.memory_errors(t):
        verdict = pipeline.verify_any(t, sol, options)
    if store is not None:
        store.put(
            key,
            "check",
            _meta(t, sol, None, options),
            {"verdict": verdict.verdict, "result": to_jsonable(verdict)},
        )
    return verdict


def _smallest_case(ref: WorkerClient, task: Task, secret: int) -> tuple[str, CaseReply] | None:
    """(label, reference case) of the variant with the fewest input bytes, other than the headline."""
    sized: list[tuple[int, Variant]] = []
    for var in task.variants[1:]:
        nbytes = input_bytes(task.path, var.overrides)
        if nbytes is not None:
            sized.append((nbytes, var))
    if not sized:
        return None
    size, v = min(sized, key=lambda bv: bv[0])
    reply = make_case(
        ref, task, CasePlan(v, "small", secret ^ 0x5A11, "as-given"), param_seed=secret & 0xFFFFFFFF
    )
    if reply.error:
        return None
    reply.input_bytes = size
    return v.label, reply


def _call_metrics(
    t: Task, cand: WorkerClient, ref: WorkerClient, head_case: CaseReply, head_ms: float,
    copts: CheckOptions, topts: TimingOptions, threads: int, secret: int,
) -> CallMetrics:  # fmt: skip
    from kernelarena.timing import metrics

    try:
        return metrics.measure(
            cand, device=copts.device, head_ms=head_ms, head_case=head_case,
            small=_smallest_case(ref, t, secret), cache=topts.cache, threads=threads,
            flush_bytes=timing.flush_bytes(),
        )  # fmt: skip
    except WorkerFailure as exc:  # the time stands; the extras say why they are missing
        return CallMetrics(unavailable=(f"all: a worker {exc} while measuring the per-call metrics",))


def roofline_percent(
    flops: float | None,
    bytes_moved: float | None,
    median_ms: float,
    cache: str = "warm",
    db_path: Path | None = None,
    threads: int | None = None,
    device: str = "cpu",
) -> tuple[float | None, str | None]:
    """% of the machine's roofline (None when the task or the machine profile cannot say).

    The profile (of ``device``, measured with the bench's ``threads``) comes from ``db_path`` (the
    store in use: ``--db``, read and saved there); None (``--no-store``) measures a quick profile
    once per process without writing any database (the default one included)."""
    if not flops and not bytes_moved:
        return None, None
    try:
        from kernelarena.hw import percent_of_roofline
        from kernelarena.hw.roofline import working_set_for_cache

        profile = _profile(db_path, threads or settings.num_threads(), device)
        # cold cache: judged against DRAM; warm: against the cache level that holds the working set
        ws = working_set_for_cache(cache, bytes_moved)
        pct = percent_of_roofline(profile, flops or 0.0, bytes_moved or 0.0, median_ms, working_set_bytes=ws)
        return float(pct), None
    except Exception as exc:  # the profile is an extra: its failure never sinks a bench
        return None, f"roofline unavailable: {type(exc).__name__}: {exc}"


@functools.cache
def _profile(db_path: Path | None, threads: int, device: str = "cpu") -> Any:
    from kernelarena.hw import load_or_measure

    path = Path(db_path) if db_path is not None else Path(":memory:")
    return load_or_measure(path, quick=True, threads=threads, kind="cuda" if device == "cuda" else "cpu")


def _resolved(copts: CheckOptions, topts: TimingOptions) -> tuple[CheckOptions, TimingOptions]:
    """Settings resolved at the edge: both options carry the thread count the run uses, so the
    cache key is complete (``threads=None`` in a key let records of different KARENA_THREADS mix)."""
    threads = copts.threads or topts.threads or settings.num_threads()
    return replace(copts, threads=threads), replace(topts, threads=threads)


def bench_key(
    t: Task,
    sol: Solution,
    base_sol: Solution | None,
    baseline: str,
    copts: CheckOptions,
    topts: TimingOptions,
) -> str:
    """The store key of a bench record (options already resolved by ``_resolved``)."""
    parts = {**_key_parts(t, sol, copts), "baseline": base_sol.source_hash if base_sol else baseline,
             "timing": to_jsonable(topts)}  # fmt: skip
    return make_key("bench", parts)


def bench(
    task: str | Path | Task,
    solution: str | Path,
    *,
    baseline: str = "eager",
    check_options: CheckOptions | None = None,
    timing_options: TimingOptions | None = None,
    store: Store | None = None,
    fresh: bool = False,
    progress: Callable[[str], None] | None = None,
    verified: Verdict | None = None,
) -> BenchResult:
    """Verify, then time candidate and baseline (``eager``, ``compile`` or a solution PATH).

    ``verified``: a passing verdict from ``check`` with the same options, to skip re-verifying.
    """
    copts, topts = _resolved(check_options or CheckOptions(), timing_options or TimingOptions())
    pipeline.require_device(copts.device)
    prestart_workers(copts.threads)
    t = pipeline.as_task(task, copts.max_bytes)
    sol = load_solution(solution)
    base_sol = None
    if baseline not in ("eager", "compile"):
        base_sol = load_solution(baseline)
    key = bench_key(t, sol, base_sol, baseline, copts, topts)
    if store is not None and not fresh:
        cached = store.get(key)
        if cached is not None:
            return bench_from_json(cached["result"], note="reused a stored record (use --fresh to re-run)")
    secret = copts.secret if copts.secret is not None else new_secret()
    skipped = backend_of(sol).timing_skipped(copts)
    if skipped:
        verdict = verified if verified is not None else pipeline.verify_any(t, sol, copts)
        return BenchResult(
            verdict=verdict,
            baseline_kind=baseline,
            flags=(skipped,),
            code_path=backend_of(sol).code_path(copts),
        )
    pipeline.memory_guard(t)
    with pipeline.memory_errors(t), pipeline.workers(copts) as (ref, cand):
        if progress:
            progress("verifying")
        if verified is not None and verified.passed:
            verdict = verified
        else:
            verdict = verify(t, sol.path, replace(copts, secret=secret), ref, cand)
            verdict = pipeline.with_budget(t, verdict, ref, cand, copts, secret)
        result = BenchResult(verdict=verdict, baseline_kind=baseline)
        if verdict.passed:
            if verified is not None:  # the candidate worker has not imported the solution yet
                cand.load(Load(path=str(sol.path), device=copts.device))
            result = _timed(
                t,
                sol,
                base_sol,
                baseline,
                verdict,
                ref,
                cand,
                copts,
                topts,
                secret,
                progress,
                store.path if store is not None else None,
            )
    result = replace(result, code_path=backend_of(sol).code_path(copts))
    if store is not None:
        store.put(key, "bench", _meta(t, sol, baseline, copts),
                  {"verdict": "pass" if result.passed else "fail", "speedup": result.speedup,
                   "result": to_jsonable(result)})  # fmt: skip
    return result


def _timed(
    t: Task,
    sol: Solution,
    base_sol: Solution | None,
    baseline: str,
    verdict: Verdict,
    ref: WorkerClient,
    cand: WorkerClient,
    copts: CheckOptions,
    topts: TimingOptions,
    secret: int,
    progress: Callable[[str], None] | None,
    db_path: Path | None,
) -> BenchResult:
    threads = copts.threads or settings.num_threads()
    if progress:
        progress("timing")
    try:
        timing_cases: list[CaseReply] = []
        inputs = pipeline.timing_inputs(ref, t, topts.input_sets, secret, timing_cases)
        head_case = timing_cases[0]  # the headline shape's work figures, from the first timed input set
        head_case.input_bytes = input_bytes(t.path, t.headline.overrides)
        flops, bytes_moved = head_case.flops, head_case.bytes_moved
        timing.setup_side(cand, inputs, topts, threads)
        with contextlib.ExitStack() as stack:
            if base_sol is not None:
                base = stack.enter_context(
                    WorkerClient("candidate", threads=threads, memory_bytes=copts.memory_bytes)
                )
                r = base.load(Load(path=str(base_sol.path), device=copts.device))
                if r.error:
                    raise UsageError(f"baseline solution failed to import: {r.error}")
                timing.setup_side(base, inputs, topts, threads)
            else:
                base = ref
                pipeline.load_reference_model(ref, t, copts.device)
                if baseline == "compile":
                    _best_compile_mode(ref, inputs, topts, threads, secret)
                else:
                    timing.setup_side(ref, inputs, topts, threads)
            pair = timing.time_pair(cand, base, inputs, topts, threads, secret=secret,
                                    baseline_checks=base_sol is not None, progress=progress, reference=ref)  # fmt: skip
    except timing.TimingRejected as exc:
        return BenchResult(verdict=verdict, baseline_kind=baseline, reasons=(str(exc),))
    except WorkerFailure as exc:
        return BenchResult(
            verdict=verdict, baseline_kind=baseline, reasons=(f"while timing, a worker {exc}",)
        )
    reasons, flags = list(pair.reasons), list(pair.flags)
    call_metrics = None
    if not reasons:
        if progress:
            progress("per-call metrics")
        call_metrics = _call_metrics(
            t, cand, ref, head_case, pair.candidate.median_ms, copts, topts, threads, secret
        )
    pct, note = roofline_percent(
        flops, bytes_moved, pair.candidate.median_ms, topts.cache, db_path, threads, copts.device
    )
    if note:
        flags.append(note)
    if pct is not None and t.has_int_ops:
        flags.append(
            "% of roofline counts memory traffic and fp32 work only: this task's integer dot products "
            "(int_ops()) run on int8 units whose peak the machine profile does not measure"
        )
    implausible = (pct is not None and pct > 100.0) or pair.speedup > IMPLAUSIBLE_SPEEDUP
    if implausible:
        why = (
            f"{pct:.0f}% of the roofline" if pct is not None and pct > 100 else f"{pair.speedup:.0f}x speedup"
        )
        with pipeline.workers(copts) as (ref2, cand2):  # a second, independent verification with a new secret
            again = verify(t, sol.path, replace(copts, secret=new_secret()), ref2, cand2)
        if not again.passed:
            reasons.append(
                f"implausible speed ({why}) and re-verification failed: {'; '.join(again.reasons[:2])}"
            )
        elif reused := _speed_on_fresh_inputs(t, inputs, ref, cand, pair.candidate.median_ms, topts, threads):
            reasons.append(f"implausible speed ({why}): {reused}")
        else:
            # A profile measured on a busy machine underestimates the peaks, so the roofline alone
            # never rejects: it triggers the second verification and the fresh-input timing.
            flags.append(
                f"implausible speed ({why}); re-verified with a fresh secret and timed on never-seen "
                "inputs: pass"
            )
    return BenchResult(
        verdict=verdict,
        baseline_kind=baseline,
        candidate=pair.candidate,
        baseline=pair.baseline,
        speedup=pair.speedup,
        speedup_ci=pair.speedup_ci,
        unstable=pair.unstable,
        percent_of_roofline=pct,
        flags=tuple(flags),
        reasons=tuple(reasons),
        flops=flops,
        bytes_moved=bytes_moved,
        metrics=call_metrics,
    )


def _speed_on_fresh_inputs(
    t: Task,
    inputs: timing.TimingInputs,
    ref: WorkerClient,
    cand: WorkerClient,
    timed_median_ms: float,
    topts: TimingOptions,
    threads: int,
) -> str | None:
    """Why an implausible time came from results reused across calls, or None (timing/floor.py)."""
    from kernelarena.timing import floor

    secret = new_secret()
    try:
        fresh = pipeline.timing_inputs(ref, t, floor.FRESH_SETS, secret)
        times, problems = floor.fresh_input_ms(cand, ref, inputs, fresh, topts, threads, secret)
    except (timing.TimingRejected, WorkerFailure) as exc:
        return f"timing on never-seen inputs failed: {exc}"
    if problems:
        return f"on never-seen inputs: {problems[0]}"
    return floor.reused_results(timed_median_ms, times)


def _best_compile_mode(
    ref: WorkerClient, inputs: timing.TimingInputs, topts: TimingOptions, threads: int, secret: int
) -> None:
    """torch.compile's best mode, not its default: each mode is compiled and briefly timed."""
    modes = settings.compile_modes()
    if len(modes) == 1:
        timing.setup_side(ref, inputs, topts, threads, compile_mode=modes[0])
        return
    best: tuple[float, str] | None = None
    last = None
    for mode in modes:
        try:
            timing.setup_side(ref, inputs, topts, threads, compile_mode=mode)
            last = mode
            reply = ref.time_batch(TimeBatch(n_calls=20, cache=topts.cache))
        except (timing.TimingRejected, WorkerFailure) as exc:
            log.warning("torch.compile mode %s failed: %s", mode, exc)
            continue
        if reply.error:
            continue
        med = stats.median(reply.times_ms)
        if best is None or med < best[0]:
            best = (med, mode)
    if best is None:
        raise timing.TimingRejected("torch.compile failed in every mode")
    if best[1] != last:
        timing.setup_side(ref, inputs, topts, threads, compile_mode=best[1])


def bench_from_json(data: dict[str, Any], note: str | None = None) -> BenchResult:
    from kernelarena.types import Measurement

    def meas(d: dict[str, Any] | None) -> Measurement | None:
        if d is None:
            return None
        return Measurement(**{**d, "ci_ms": tuple(d["ci_ms"]), "samples_ms": tuple(d.get("samples_ms", ()))})

    v = verdict_from_json(data["verdict"])
    if note:
        v = replace(v, notes=(*v.notes, note))
    return BenchResult(
        verdict=v,
        baseline_kind=data["baseline_kind"],
        candidate=meas(data.get("candidate")),
        baseline=meas(data.get("baseline")),
        speedup=data.get("speedup"),
        speedup_ci=(data["speedup_ci"][0], data["speedup_ci"][1]) if data.get("speedup_ci") else None,
        unstable=data.get("unstable", False),
        percent_of_roofline=data.get("percent_of_roofline"),
        flags=tuple(data.get("flags", ())),
        reasons=tuple(data.get("reasons", ())),
        flops=data.get("flops"),
        bytes_moved=data.get("bytes_moved"),
        metrics=CallMetrics.from_json(data.get("metrics")),
        code_path=data.get("code_path"),
    )


__all__ = ["EvalOutcome", "TuningSession", "bench", "check", "load_solution"]
