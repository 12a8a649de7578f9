"""Prepared GPU check for a lent H100/H200: correctness and speed of the Triton solutions, one ncu profile.

Run by scripts/gpu_check.sh (which also runs ``pytest -m gpu``). Every item fails soft: its error is
recorded and the script goes on. All figures land in ``$OUT/gpu_check.json`` (OUT defaults to ./out),
rewritten after every item so a run cut short still leaves what it measured.

Per Triton solution, at the task's headline shape (VARIANTS[0]):
  * correctness against the task's Model in float64 (on the GPU);
  * per-call times with CudaTimer (cold L2, 3 input sets cycled): solution, torch eager, and
    torch.compile (default mode) while the time budget allows;
  * achieved DRAM bandwidth from the task's ``bytes_moved`` and the speedups.
Then ``ncu`` on one kernel (``--ncu-task``) if ncu is on PATH: occupancy, DRAM and SM throughput,
warp stall reasons (sections SpeedOfLight, Occupancy, WarpStateStats).

Usage: python scripts/gpu_check.py [--budget-s 360] [--tasks a,b] [--ncu-task rmsnorm]
       python scripts/gpu_check.py --ncu-target rmsnorm   (internal: the process ncu profiles)
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TASK_DIR = ROOT / "src" / "kernelarena" / "tasks" / "suites" / "llm"
SOLUTION_DIR = ROOT / "src" / "kernelarena" / "solutions" / "triton"
N_SETS = 3
N_CALLS = 50


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, tuple | list) else (x,)


def _setup(name: str) -> tuple[Any, Any, Any, list[list[Any]], list]:
    """Task module at its headline shape, reference model on GPU, solution model, input sets."""
    import torch

    task = _load(TASK_DIR / f"{name}.py", f"_gc_task_{name}")
    sol = _load(SOLUTION_DIR / f"{name}.py", f"_gc_sol_{name}")
    for key, value in ((getattr(task, "VARIANTS", None) or [{}])[0]).items():
        setattr(task, key, value)
    torch.manual_seed(0)
    init = task.get_init_inputs()
    model = task.Model(*init)
    with torch.no_grad():
        for p in [*model.parameters(), *model.buffers()]:
            if p.is_floating_point() and p.numel():
                p.mul_(torch.rand_like(p) + 0.5)
    new = sol.ModelNew(*init)
    new.load_state_dict(model.state_dict())
    sets = [
        [x.cuda() if isinstance(x, torch.Tensor) else x for x in task.get_inputs()] for _ in range(N_SETS)
    ]
    return task, model.cuda(), new.cuda(), sets, init


def _verify(task: Any, model: Any, new: Any, inputs: list) -> dict[str, Any]:
    import copy

    import torch

    atol, rtol = float(getattr(task, "ATOL", 1e-5)), float(getattr(task, "RTOL", 1e-4))
    f64 = bool(getattr(task, "FLOAT64_REFERENCE", True))
    with torch.no_grad():
        ref_model = copy.deepcopy(model).double() if f64 else model
        ref_in = [
            x.double() if f64 and isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs
        ]
        refs = _as_tuple(ref_model(*ref_in))
        outs = _as_tuple(new(*inputs))
    torch.cuda.synchronize()
    worst = 0.0
    problems = []
    for j, (o, r) in enumerate(zip(outs, refs)):
        if not r.is_floating_point():
            if not torch.equal(o, r):
                problems.append(f"output {j}: {(o != r).sum().item()} integer elements differ")
            continue
        rd = r.double()
        bound = atol * rd.pow(2).mean().sqrt() + rtol * rd.abs()
        ratio = float(((o.double() - rd).abs() / bound.clamp_min(1e-300)).max())
        worst = max(worst, ratio)
        if not (ratio <= 1.0):
            problems.append(f"output {j}: error/tolerance ratio {ratio:.3g}")
    return {"pass": not problems and len(outs) == len(refs), "worst_error_ratio": worst, "problems": problems}


def _time(timer: Any, module: Any, sets: list) -> dict[str, Any]:
    import torch

    def call(i: int) -> object:
        with torch.no_grad():
            return module(*sets[i % len(sets)])

    ms = timer.time_calls(call, N_CALLS, cache="cold")
    q = statistics.quantiles(ms, n=10)
    return {"median_ms": statistics.median(ms), "p10_ms": q[0], "p90_ms": q[-1], "n_calls": len(ms)}


def check_solution(name: str, timer: Any, deadline: float) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    task, model, new, sets, _ = _setup(name)
    out["shape"] = (getattr(task, "VARIANTS", None) or [{}])[0]
    out["verify"] = _verify(task, model, new, sets[0])
    out["triton"] = _time(timer, new, sets)
    out["eager"] = _time(timer, model, sets)
    out["speedup_vs_eager"] = out["eager"]["median_ms"] / out["triton"]["median_ms"]
    if hasattr(task, "bytes_moved"):
        moved = float(task.bytes_moved(*sets[0]))
        out["bytes_moved"] = moved
        out["triton_gb_per_s"] = moved / (out["triton"]["median_ms"] * 1e-3) / 1e9
    if time.time() < deadline:
        try:
            t0 = time.time()
            compiled = torch.compile(model)
            with torch.no_grad():
                compiled(*sets[0])
            out["compile_s"] = time.time() - t0
            out["compile"] = _time(timer, compiled, sets)
            out["speedup_vs_compile"] = out["compile"]["median_ms"] / out["triton"]["median_ms"]
        except Exception as exc:  # record and go on
            out["compile_error"] = f"{type(exc).__name__}: {exc}"[:2000]
    else:
        out["compile_skipped"] = "time budget spent"
    return out


def compile_reports(name: str) -> dict[str, Any]:
    """sm_90 compile-check figures, for comparison with what the GPU run used."""
    from kernelarena.backends.triton import check_solution as compile_check
    from kernelarena.backends.triton import load_solution_module

    rep = compile_check(load_solution_module(SOLUTION_DIR / f"{name}.py"))
    return {
        "ok": rep.ok,
        "error": rep.error,
        "kernels": [
            {
                "kernel": k,
                "ok": r.ok,
                "regs": r.n_regs,
                "spill_bytes": r.n_spills,
                "shared_bytes": r.shared_bytes,
            }
            for k, r in rep.results
        ],
    }


def ncu_target(name: str) -> None:
    """The process that ncu profiles: a few warm-up calls, then the profiled ones."""
    import torch

    _, _, new, sets, _ = _setup(name)
    with torch.no_grad():
        for i in range(6):
            new(*sets[i % len(sets)])
    torch.cuda.synchronize()


def run_ncu(name: str, timeout_s: float) -> dict[str, Any]:
    ncu = shutil.which("ncu")
    if ncu is None:
        return {"skipped": "ncu not on PATH"}
    sol = _load(SOLUTION_DIR / f"{name}.py", f"_gc_ncu_sol_{name}")
    kernels = [k for k, _ in getattr(sol, "TRITON_COMPILE_SPECS", [])]
    kernel_name = kernels[0].__name__ if kernels else name
    cmd = [
        ncu,
        "--target-processes",
        "all",
        "--kernel-name",
        kernel_name,
        "--launch-skip",
        "3",
        "--launch-count",
        "1",
        "--section",
        "SpeedOfLight",
        "--section",
        "Occupancy",
        "--section",
        "WarpStateStats",
        "--section",
        "LaunchStats",
        "--csv",
        "--page",
        "details",
        sys.executable,
        str(Path(__file__).resolve()),
        "--ncu-target",
        name,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    rows: dict[str, dict[str, str]] = {}
    text = proc.stdout
    start = text.find('"ID"')
    if start >= 0:
        for row in csv.DictReader(io.StringIO(text[start:])):
            section = row.get("Section Name", "")
            metric = row.get("Metric Name", "")
            unit = row.get("Metric Unit", "")
            rows.setdefault(section, {})[f"{metric} [{unit}]" if unit else metric] = row.get(
                "Metric Value", ""
            )
    result: dict[str, Any] = {"kernel": kernel_name, "returncode": proc.returncode, "sections": rows}
    if not rows:
        result["stdout_tail"] = text[-3000:]
        result["stderr_tail"] = proc.stderr[-3000:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budget-s", type=float, default=360.0, help="stop starting torch.compile baselines after this"
    )
    parser.add_argument("--tasks", default="", help="comma-separated solution names (default: all)")
    parser.add_argument("--ncu-task", default="rmsnorm")
    parser.add_argument("--ncu-target", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.environ.get("OUT", "out"))
    args = parser.parse_args()
    if args.ncu_target:
        ncu_target(args.ncu_target)
        return 0

    import torch

    t_start = time.time()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "solutions": {}}
    path = out_dir / "gpu_check.json"

    def save() -> None:
        report["elapsed_s"] = time.time() - t_start
        path.write_text(json.dumps(report, indent=1, default=str))

    try:
        import triton

        props = torch.cuda.get_device_properties(0)
        report["device"] = {
            "name": props.name,
            "capability": list(torch.cuda.get_device_capability()),
            "sms": props.multi_processor_count,
            "l2_bytes": getattr(props, "L2_cache_size", None),
            "memory_bytes": props.total_memory,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "triton": triton.__version__,
        }
    except Exception as exc:
        report["device_error"] = f"{type(exc).__name__}: {exc}"
        save()
        return 1
    save()

    from kernelarena.timing.cuda import CudaTimer

    timer = CudaTimer()
    report["timer"] = timer.describe()
    names = [n for n in args.tasks.split(",") if n] or sorted(
        p.stem for p in SOLUTION_DIR.glob("*.py") if p.name != "__init__.py"
    )
    deadline = t_start + args.budget_s
    for name in names:
        entry: dict[str, Any] = {}
        report["solutions"][name] = entry
        if not (TASK_DIR / f"{name}.py").exists():
            entry["error"] = "no task file"
            continue
        t0 = time.time()
        try:
            entry["compile_check_sm90"] = compile_reports(name)
        except Exception as exc:
            entry["compile_check_error"] = f"{type(exc).__name__}: {exc}"
        try:
            entry.update(check_solution(name, timer, deadline))
        except Exception as exc:  # fail soft: record, free memory, go on
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["trace"] = traceback.format_exc()[-3000:]
        entry["seconds"] = time.time() - t0
        torch.cuda.empty_cache()
        save()
        print(
            json.dumps(
                {
                    name: {
                        k: entry.get(k) for k in ("verify", "speedup_vs_eager", "speedup_vs_compile", "error")
                    }
                },
                default=str,
            ),
            flush=True,
        )

    try:
        report["ncu"] = run_ncu(args.ncu_task, timeout_s=120)
    except Exception as exc:
        report["ncu"] = {"error": f"{type(exc).__name__}: {exc}"}
    save()
    print(f"wrote {path} after {time.time() - t_start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
