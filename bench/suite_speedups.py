"""Speedups of the built-in solutions of a suite against torch eager and torch.compile.

Usage: python bench/suite_speedups.py [--suite llm] [--budget 1.0] [--only a,b] [--isa avx2] [--json out.json]
Runs `suite run` twice (baselines eager and compile; interleaved timing, headline shapes, cold
cache) and prints per task: speedup vs eager, speedup vs compile, % of roofline, plus the suite's
geometric means. ``--isa avx2|generic`` forces the SIMD path of the C solutions (``KARENA_CPU_ISA``,
set before any solution is built, so the sandbox's workers inherit it); the path is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kernelarena import settings  # noqa: E402
from kernelarena.store.sqlite import Store  # noqa: E402
from kernelarena.suite import builtin_solutions_dir, resolve_suite, run_suite  # noqa: E402
from kernelarena.types import CheckOptions, TimingOptions  # noqa: E402


def geomean(xs: list[float | None]) -> float | None:
    ok = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in ok) / len(ok)) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="llm")
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--only", help="comma-separated task names")
    ap.add_argument("--baselines", default="eager,compile")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--isa", choices=["native", "avx512", "avx2", "generic"], help="force the CPU SIMD path")
    args = ap.parse_args()
    if args.isa:
        os.environ["KARENA_CPU_ISA"] = args.isa
    print(f"CPU SIMD path: {settings.gemm_cpu_isa()} (KARENA_CPU_ISA)", flush=True)
    suite = resolve_suite(args.suite)
    sols = builtin_solutions_dir()
    if args.only:  # a temporary suite with just these tasks
        tmp = Path(tempfile.mkdtemp())
        (tmp / "t").mkdir()
        for name in args.only.split(","):
            shutil.copy(suite / f"{name}.py", tmp / "t" / f"{name}.py")
        suite = tmp / "t"
    results: dict[str, dict[str, dict]] = {}
    with Store(settings.db_path()) as store:
        for baseline in args.baselines.split(","):
            summary = run_suite(
                suite, sols, baseline=baseline, store=store,
                check_options=CheckOptions(seeds=1), timing_options=TimingOptions(budget_s=args.budget),
                progress=lambda d, n, r: print(f"  [{d}/{n}] {r['task']}: {r['verdict']} {r.get('speedup') or ''}",
                                               file=sys.stderr, flush=True),
            )  # fmt: skip
            for r in summary["results"]:
                results.setdefault(r["task"], {})[baseline] = r
    names = sorted(results)
    print(f"{'task':32s} {'vs eager':>9s} {'vs compile':>11s} {'%roof':>6s}  {'cand ms':>9s}  verdict")
    for n in names:
        e, c = results[n].get("eager", {}), results[n].get("compile", {})
        sp = lambda r: f"{r['speedup']:.2f}x" if r.get("speedup") else "-"  # noqa: E731
        roof = e.get("percent_of_roofline")
        print(f"{n:32s} {sp(e):>9s} {sp(c):>11s} {roof if roof is None else round(roof):>6}  "
              f"{e.get('candidate_ms') or 0:9.3f}  {e.get('verdict') or 'no solution'}")  # fmt: skip
    for b in args.baselines.split(","):
        g = geomean([results[n].get(b, {}).get("speedup") for n in names])
        print(f"geomean speedup vs {b}: {g:.2f}x" if g else f"geomean vs {b}: -")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
