"""Timer fidelity: A/A ratios and CI widths over repeats for three task sizes, and timer overhead.

Usage: python bench/timer_fidelity.py [--repeats 10] [--budget 1.0]
An A/A comparison times a solution against itself (two workers, interleaved rounds): a faithful
timer gives ratios near 1.0 with confidence intervals that contain 1.0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kernelarena import api  # noqa: E402
from kernelarena.types import CheckOptions, TimingOptions  # noqa: E402
from kernelarena.worker_client import Load, SetupTiming, TimeBatch, WorkerClient  # noqa: E402

TASK = ROOT / "tests/data/tasks/scaled_tanh.py"
SOLUTION = ROOT / "tests/data/solutions/scaled_tanh_c.py"
SIZES = {"small (64x300)": (64, 300), "medium (512x4096)": (512, 4096), "large (2048x8192)": (2048, 8192)}


def sized_task(tmp: Path, rows: int, cols: int) -> Path:
    src = TASK.read_text().replace(
        'VARIANTS = [{"rows": 64, "cols": 300}', f'VARIANTS = [{{"rows": {rows}, "cols": {cols}}}'
    )
    p = tmp / f"scaled_tanh_{rows}x{cols}.py"
    p.write_text(src)
    return p


def timer_overhead_ns(n: int = 200_000) -> float:
    clock = time.perf_counter_ns
    t0 = clock()
    for _ in range(n):
        clock()
    return (clock() - t0) / n


def empty_call_overhead_ms() -> float:
    """Per-call cost of the worker's timing loop around a trivial model (cold flush excluded)."""
    import torch

    with WorkerClient("reference") as w:
        w.load(Load(path=str(ROOT / "tests/data/tasks/no_variants.py"), overrides={}))
        w.setup_timing(SetupTiming([], {}, [[torch.randn(16, 64)]], threads=1, flush_bytes=0, warmup_s=0.1))
        r = w.time_batch(TimeBatch(n_calls=2000, cache="warm"))
    return statistics.median(r.times_ms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--budget", type=float, default=1.0)
    args = ap.parse_args()
    copts = CheckOptions(seeds=1, distributions=("as-given",), repeat_determinism=False)
    print(f"timer: perf_counter_ns overhead {timer_overhead_ns():.0f} ns/read")
    print(f"timer: worker loop around a tiny torch model: {empty_call_overhead_ms() * 1e3:.1f} us/call")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (rows, cols) in SIZES.items():
            task = sized_task(Path(tmp), rows, cols)
            ratios, widths, contains = [], [], 0
            for i in range(args.repeats):
                b = api.bench(task, SOLUTION, baseline=str(SOLUTION), check_options=copts,
                              timing_options=TimingOptions(budget_s=args.budget, seed=i))  # fmt: skip
                lo, hi = b.speedup_ci
                ratios.append(b.speedup)
                widths.append((hi - lo) / b.speedup)
                contains += lo <= 1.0 <= hi
                cand_ms = b.candidate.median_ms
            print(
                f"{label:20s} A/A ratio median {statistics.median(ratios):.4f} "
                f"[min {min(ratios):.4f}, max {max(ratios):.4f}]  CI width median {statistics.median(widths):.2%}  "
                f"CI contains 1.0 in {contains}/{args.repeats}  (call {cand_ms:.3f} ms)"
            )


if __name__ == "__main__":
    main()
