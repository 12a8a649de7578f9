"""Speedups of the built-in solutions of a suite against torch eager and torch.compile.

Usage: python bench/suite_speedups.py [--suite llm] [--budget 1.0] [--only a,b] [--isa avx2] [--json out.json]
Runs `suite run` once per baseline (eager, then compile; interleaved timing, headline shapes, cold
cache; the second run reuses the first one's stored verdicts) and prints per task: the code path it
ran on, speedup vs eager, speedup vs compile, % of roofline and whether the roofline is set by
memory, fp32 compute or (for tasks with ``int_ops()``) int8 dot products, then the suite's geometric means and issue 13's targets, each met or not.
``--isa avx2|generic`` forces the SIMD path of the C solutions (``KARENA_CPU_ISA``, set before any
solution is built, so the sandbox's workers inherit it).

The copy ceiling: % of roofline divides by the hardware profile's memory bandwidth, the best sample
of its best kernel (streaming-store copy over 1 GiB, steady state), while a task is timed as the
median of single cold-cache calls on a few tens of MiB. A streaming copy timed the same way (the
test suite's ``copy_large`` task and ``copy_stream_c`` solution, 24 MiB in and 24 MiB out, same
budget and cache state) is the most a read-once/write-once kernel can reach in that measurement, so
the script times it first and prints each memory-bound task's roofline figure also as % of the
copy's (``--no-copy`` skips it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kernelarena import settings  # noqa: E402
from kernelarena.store.sqlite import Store  # noqa: E402
from kernelarena.suite import builtin_solutions_dir, resolve_suite, run_suite  # noqa: E402
from kernelarena.types import CheckOptions, TimingOptions  # noqa: E402

COPY_TASK = ROOT / "tests/data/tasks/copy_large.py"
COPY_SOLUTION = ROOT / "tests/data/solutions/copy_stream_c.py"

# issue 13's targets (per machine kind)
GEOMEAN_EAGER = 2.0
FLOOR_EAGER = 0.9
GEOMEAN_COMPILE = 1.0
MEMORY_BOUND_ROOF = 70.0


def geomean(xs: list[float | None]) -> float | None:
    ok = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in ok) / len(ok)) if ok else None


def bound_of(r: dict[str, Any], profile: Any, task_path: Path) -> str:
    """'memory' when moving the task's bytes at DRAM bandwidth takes longer than its flops at peak;
    'int8' for a task whose integer dot products (``int_ops()``) the fp32 roofline does not model."""
    from kernelarena.hw.roofline import peak_flops
    from kernelarena.tasks.loader import load_task

    if load_task(task_path, max_bytes=None).has_int_ops:
        return "int8"
    flops, nbytes = r.get("flops") or 0.0, r.get("bytes_moved") or 0.0
    if not flops and not nbytes:
        return "-"
    return "memory" if nbytes / profile.mem_bw_bytes_per_s >= flops / peak_flops(profile) else "compute"


def copy_ceiling(store: Any, budget: float) -> float | None:
    """% of roofline a streaming copy reaches under the suite's timing (cold cache, interleaved
    against eager, the same budget): the ceiling of a read-once/write-once kernel's figure."""
    from kernelarena import api

    b = api.bench(COPY_TASK, COPY_SOLUTION, store=store, check_options=CheckOptions(seeds=1),
                  timing_options=TimingOptions(budget_s=budget))  # fmt: skip
    return b.percent_of_roofline if b.passed else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="llm")
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--only", help="comma-separated task names")
    ap.add_argument("--baselines", default="eager,compile")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument(
        "--from-json", type=Path, help="print the table of an earlier run's --json file, run nothing"
    )
    ap.add_argument("--isa", choices=["native", "avx512", "avx2", "generic"], help="force the CPU SIMD path")
    ap.add_argument("--no-copy", action="store_true", help="skip the streaming-copy ceiling measurement")
    args = ap.parse_args()
    if args.isa:
        os.environ["KARENA_CPU_ISA"] = args.isa
    from kernelarena.backends.gemm_build import simd_path
    from kernelarena.hw import load_or_measure
    from kernelarena.hw.profile import cpu_model_name

    print(f"CPU: {cpu_model_name()}; C solutions built for the {simd_path()} path "
          f"(KARENA_CPU_ISA={settings.gemm_cpu_isa()}); {settings.num_threads()} threads", flush=True)  # fmt: skip
    suite = resolve_suite(args.suite)
    sols = builtin_solutions_dir()
    if args.only:  # a temporary suite with just these tasks
        tmp = Path(tempfile.mkdtemp())
        (tmp / "t").mkdir()
        for name in args.only.split(","):
            shutil.copy(suite / f"{name}.py", tmp / "t" / f"{name}.py")
        suite = tmp / "t"
    baselines = args.baselines.split(",")
    results: dict[str, dict[str, dict]] = {}
    copy_pct: float | None = None
    t0 = time.monotonic()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        results, copy_pct = (saved["results"], saved.get("copy_pct")) if "results" in saved else (saved, None)
        baselines = []
    with Store(settings.db_path()) as store:
        if baselines and not args.no_copy:
            copy_pct = copy_ceiling(store, args.budget)
            print(f"streaming copy (48 MiB, cold, same timing): "
                  f"{'-' if copy_pct is None else f'{copy_pct:.0f}%'} of the roofline", file=sys.stderr, flush=True)  # fmt: skip
        for baseline in baselines:
            summary = run_suite(
                suite, sols, baseline=baseline, store=store,
                check_options=CheckOptions(seeds=1), timing_options=TimingOptions(budget_s=args.budget),
                progress=lambda d, n, r: print(f"  [{d}/{n}] {time.monotonic() - t0:6.0f} s  {r['task']}: "
                                               f"{r['verdict']} {r.get('speedup') or ''}", file=sys.stderr, flush=True),
            )  # fmt: skip
            for r in summary["results"]:
                results.setdefault(r["task"], {})[baseline] = r
    profile = load_or_measure(settings.db_path(), quick=True)
    names = sorted(results)
    print(f"\n{'task':32s} {'path':16s} {'x eager':>8s} {'x compile':>10s} {'%roof':>6s} {'%copy':>6s} "
          f"{'bound':>8s}  verdict")  # fmt: skip
    rows = []
    for n in names:
        e, c = results[n].get("eager", {}), results[n].get("compile", {})
        roof, bound = e.get("percent_of_roofline"), bound_of(e, profile, suite / f"{n}.py")
        rows.append((n, e.get("speedup"), roof, bound, e.get("verdict")))
        sp = lambda r: f"{r['speedup']:.2f}" if r.get("speedup") else "-"  # noqa: E731
        of_copy = "-" if roof is None or not copy_pct or bound != "memory" else round(100 * roof / copy_pct)
        print(f"{n:32s} {e.get('code_path') or '-':16s} {sp(e):>8s} {sp(c):>10s} "
              f"{'-' if roof is None else round(roof):>6} {of_copy:>6} {bound:>8s}  {e.get('verdict') or 'no solution'}")  # fmt: skip
    baselines = baselines or sorted(
        {b for r in results.values() for b in r}, key=lambda b: (b != "eager", b != "compile", b)
    )
    means = {b: geomean([results[n].get(b, {}).get("speedup") for n in names]) for b in baselines}
    for b, g in means.items():
        print(f"geomean speedup vs {b}: {g:.2f}x" if g else f"geomean vs {b}: -")
    took = sum(r.get("seconds") or 0 for by in results.values() for r in by.values())
    print(
        f"wall time {time.monotonic() - t0:.0f} s"
        + (f"; the pairs' own evaluation {took:.0f} s" if took else "")
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"\ntargets on this machine ({simd_path()} path):")
    ge = means.get("eager")
    if ge:
        print(f"  geomean >= {GEOMEAN_EAGER}x over eager: {ge:.2f}x, {verdict(ge >= GEOMEAN_EAGER)}")
    slow = [f"{n} {s:.2f}x" for n, s, *_ in rows if s is not None and s < FLOOR_EAGER]
    failed = [n for n, s, _r, _b, v in rows if v != "pass"]
    print(
        f"  no task below {FLOOR_EAGER}x eager: {verdict(not slow)}"
        + (f" ({', '.join(slow)})" if slow else "")
    )
    if failed:
        print(f"  tasks that did not pass (no speedup): {', '.join(failed)}")
    gc = means.get("compile")
    if gc:
        print(
            f"  geomean >= {GEOMEAN_COMPILE}x over torch.compile: {gc:.2f}x, {verdict(gc >= GEOMEAN_COMPILE)}"
        )
    mem = [(n, r) for n, _s, r, b, _v in rows if b == "memory" and r is not None]
    low = [f"{n} {r:.0f}%" for n, r in mem if r < MEMORY_BOUND_ROOF]
    print(f"  memory-bound tasks >= {MEMORY_BOUND_ROOF:.0f}% of the roofline: {len(mem) - len(low)} of {len(mem)}, "
          f"{verdict(not low)}" + (f" (below: {', '.join(low)})" if low else ""))  # fmt: skip
    if copy_pct:
        near = [n for n, r in mem if r >= 0.7 * copy_pct]
        print(f"  context: a streaming copy timed the same way reaches {copy_pct:.0f}% of the roofline here; "
              f"memory-bound tasks at >= 70% of the copy's figure: {len(near)} of {len(mem)}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"results": results, "copy_pct": copy_pct}, indent=1))


if __name__ == "__main__":
    main()
