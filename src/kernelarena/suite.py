"""Evaluating many task/solution pairs: matching by name, parallel jobs, metrics, resumption.

Verification runs in parallel (``jobs`` at a time); timing is serialized by a lock so that two
measurements never share the machine. Every finished pair is a record in the store, so a run that
is killed resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelarena import api
from kernelarena.errors import UsageError
from kernelarena.store.keys import make_key
from kernelarena.store.sqlite import Store
from kernelarena.tasks.loader import SUITES_DIR, suite_dir, task_files
from kernelarena.types import CheckOptions, TimingOptions

log = logging.getLogger(__name__)

FAST_P = (0.0, 1.0, 1.5, 2.0)
BUILTIN_SOLUTIONS = Path(__file__).parent / "solutions"


@dataclass(frozen=True)
class Pair:
    name: str
    task: Path
    solution: Path | None


def resolve_suite(ref: str) -> Path:
    p = Path(ref)
    if p.is_dir():
        return p.resolve()
    if (SUITES_DIR / ref).is_dir():
        return suite_dir(ref)
    raise UsageError(f"no suite directory or built-in suite named {ref!r}")


def builtin_solutions_dir(device: str = "cpu", backend: str | None = None) -> Path:
    """The built-in solutions for ``device``: C/OpenMP on a CPU, Triton on CUDA; ``backend`` picks
    another set (``numba``: a few numba solutions, ``cpu``/``c``, ``triton``)."""
    if backend is None:
        return BUILTIN_SOLUTIONS / ("triton" if device == "cuda" else "cpu")
    folder = {"c": "cpu"}.get(backend, backend)
    path = BUILTIN_SOLUTIONS / folder
    if folder.startswith("_") or not path.is_dir():
        known = sorted(
            p.name for p in BUILTIN_SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("_")
        )
        raise UsageError(f"no built-in solutions for backend {backend!r}; known: {', '.join(known)}")
    return path


def solutions_dir(ref: str, device: str = "cpu") -> Path:
    """``builtin``, ``builtin:BACKEND`` (e.g. ``builtin:numba``) or a directory of solution files."""
    if ref == "builtin":
        return builtin_solutions_dir(device)
    if ref.startswith("builtin:"):
        return builtin_solutions_dir(device, ref.partition(":")[2])
    return Path(ref)


def find_pairs(suite: Path, solutions: Path) -> list[Pair]:
    if not solutions.is_dir():
        raise UsageError(f"solutions directory not found: {solutions}")
    pairs = []
    for task in task_files(suite):
        sol = solutions / task.name
        pairs.append(Pair(task.stem, task, sol if sol.is_file() else None))
    if not pairs:
        raise UsageError(f"no task files in {suite}")
    return pairs


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """KernelBench-style metrics over the pairs that have a solution."""
    evaluated = [r for r in results if r["status"] != "missing"]
    n = len(evaluated)
    correct = [r for r in evaluated if r["verdict"] == "pass"]
    speedups = [r["speedup"] for r in correct if r.get("speedup")]
    fast = {
        (str(int(p)) if p == int(p) else str(p)): (
            sum(1 for r in correct if p == 0 or (r.get("speedup") or 0) > p) / n if n else 0.0
        )
        for p in FAST_P
    }
    geo = math.exp(sum(math.log(s) for s in speedups) / len(speedups)) if speedups else None
    return {
        "pairs": n,
        "missing": [r["task"] for r in results if r["status"] == "missing"],
        "correct_rate": len(correct) / n if n else 0.0,
        "fast_p": fast,
        "geomean_speedup": geo,
    }


def _with_seconds(evaluate: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Adds ``seconds`` to a pair's result: its wall time (verification, timing, waiting for the
    timing lock), wherever it ran (here or on a Ray worker)."""

    @functools.wraps(evaluate)
    def timed(*args: Any, **kwargs: Any) -> dict[str, Any]:
        start = time.monotonic()
        res = evaluate(*args, **kwargs)
        res["seconds"] = round(time.monotonic() - start, 1)
        return res

    return timed


@_with_seconds
def evaluate_pair(
    pair: Pair,
    baseline: str | None,
    copts: CheckOptions,
    topts: TimingOptions,
    *,
    store: Store | None,
    fresh: bool,
    timing_lock: Any,
) -> dict[str, Any]:
    """One pair: check, then (if it passed and a baseline is set) bench. Never raises."""
    if pair.solution is None:
        return {"task": pair.name, "status": "missing", "verdict": None, "speedup": None}
    try:
        v = api.check(pair.task, pair.solution, copts, store=store, fresh=fresh)
        if baseline is None or not v.passed:
            return {"task": pair.name, "status": "done", "verdict": v.verdict, "speedup": None,
                    "reasons": list(v.reasons), "flags": list(v.flags)}  # fmt: skip
        # verification runs in parallel; timing waits for the machine to itself
        with timing_lock or contextlib.nullcontext():
            b = api.bench(pair.task, pair.solution, baseline=baseline, check_options=copts,
                          timing_options=topts, store=store, fresh=fresh, verified=v)  # fmt: skip
        return {
            "task": pair.name,
            "status": "done",
            "verdict": "pass" if b.passed else "fail",
            "speedup": b.speedup,
            "speedup_ci": list(b.speedup_ci) if b.speedup_ci else None,
            "candidate_ms": b.candidate.median_ms if b.candidate else None,
            "baseline_ms": b.baseline.median_ms if b.baseline else None,
            "percent_of_roofline": b.percent_of_roofline,
            "code_path": b.code_path,
            "flops": b.flops,
            "bytes_moved": b.bytes_moved,
            "reasons": list(b.verdict.reasons) + list(b.reasons),
            "flags": list(b.verdict.flags) + list(b.flags),
        }
    except UsageError as exc:
        return {
            "task": pair.name,
            "status": "error",
            "verdict": "fail",
            "speedup": None,
            "reasons": [str(exc)],
        }
    except Exception as exc:  # a harness bug on one pair must not lose the others
        log.exception("pair %s", pair.name)
        return {"task": pair.name, "status": "error", "verdict": "fail", "speedup": None,
                "reasons": [f"internal error: {type(exc).__name__}: {exc}"]}  # fmt: skip


def run_suite(
    suite: Path,
    solutions: Path,
    *,
    baseline: str | None = "eager",
    jobs: int = 1,
    check_options: CheckOptions | None = None,
    timing_options: TimingOptions | None = None,
    store: Store | None = None,
    fresh: bool = False,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Evaluate every pair; ``baseline=None`` verifies only. A failing pair never stops the run.

    ``executor="ray"`` sends pairs to a Ray cluster (``ray_address``; none: Ray on this machine).
    """
    pairs = find_pairs(suite, solutions)
    copts = check_options or CheckOptions()
    topts = timing_options or TimingOptions()
    timing_lock = threading.Lock()
    run_key = make_key("suite", {"suite": str(suite), "solutions": str(solutions), "baseline": baseline})
    if store is not None:
        store.suite_started(run_key, str(suite), len(pairs))
    results: list[dict[str, Any]] = []

    def finished(res: dict[str, Any]) -> None:
        # whatever a pair left in reference cycles goes before the next one: the process must not
        # grow over a long run (it reached 6.3 GB by task 36 of 46 before the protocol fix)
        gc.collect()
        results.append(res)
        if store is not None:
            store.suite_progress(run_key, len(results))
        if progress:
            progress(len(results), len(pairs), res)

    if executor == "ray":
        from kernelarena.execute.ray_executor import run_on_ray, store_remote_records

        # Ray workers have no access to this store: each brings its records back (marked with its
        # node) and they are stored here; a killed Ray run starts over (the local executor resumes).
        for res in run_on_ray(pairs, baseline, copts, topts, address=ray_address):
            if store is not None:
                store_remote_records(store, res)
            res.pop("records", None)
            finished(res)
    elif executor == "local":
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [
                pool.submit(
                    evaluate_pair,
                    p,
                    baseline,
                    copts,
                    topts,
                    store=store,
                    fresh=fresh,
                    timing_lock=timing_lock,
                )
                for p in pairs
            ]
            for fut in as_completed(futures):
                finished(fut.result())
    else:
        raise UsageError(f"unknown executor {executor!r} (local or ray)")
    results.sort(key=lambda r: r["task"])
    summary = {**summarize(results), "baseline": baseline, "results": results}
    if store is not None:
        store.suite_progress(run_key, len(results), {k: v for k, v in summary.items() if k != "results"})
    return summary
