"""KernelBench compatibility: every task file, unmodified, verified with its own reference as the
solution (``ModelNew = Model``, policy lenient). A harness that rejects these is wrong.

Usage: python bench/kernelbench_sweep.py KB_DIR [--levels 1 2] [--limit N] [--jobs 1]
           [--max-bytes 64M] [--quick] [--json out.json]

KB_DIR is a KernelBench checkout (its ``KernelBench/levelN`` folders) or a folder holding
``levelN`` folders; nothing of KernelBench is vendored here. Each task runs in its own process
(``--one``) so a task that crashes the harness is counted, not fatal, and the peak resident memory
of that process and its workers is sampled. Prints per level: files, loaded, verified pass (and how
many carry a torch-fallback flag), fail (top reasons), harness errors, wall time, peak memory.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kernelarena.sandbox.memory import RssSampler, describe_bytes  # noqa: E402

# flags that say the solution computed with torch (lenient policy): expected here, the "solution"
# is the reference itself
FALLBACK_PREFIXES = ("policy:", "static:")


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)


def level_dir(kb: Path, level: int) -> Path:
    for cand in (kb / "KernelBench" / f"level{level}", kb / f"level{level}"):
        if cand.is_dir():
            return cand
    raise SystemExit(f"no level{level} folder under {kb} (expected KernelBench/level{level} or level{level})")


def task_number(p: Path) -> int:
    m = re.match(r"(\d+)_", p.name)
    return int(m.group(1)) if m else 10**9


def solution_for(task: Path, out_dir: Path) -> Path:
    """The task's own code plus ``ModelNew = Model``: the reference submitted as the solution."""
    sol = out_dir / task.name
    sol.write_text(task.read_text() + "\n\nModelNew = Model\n")
    return sol


def run_one(args: argparse.Namespace) -> int:
    """Child mode: one check, one JSON line on stdout; exit 0 pass, 1 fail, 2 could not run."""
    from kernelarena import api
    from kernelarena.errors import UsageError
    from kernelarena.types import CheckOptions

    base = CheckOptions.quick() if args.quick else CheckOptions()
    opts = CheckOptions(
        policy="lenient",
        seeds=base.seeds,
        distributions=base.distributions,
        repeat_determinism=base.repeat_determinism,
        max_bytes=args.max_bytes,
        threads=args.threads,
        timeout_s=args.timeout,
    )
    try:
        v = api.check(args.one[0], args.one[1], opts)
    except UsageError as exc:
        print(json.dumps({"status": "usage", "error": str(exc)}))
        return 2
    print(json.dumps({"status": "done", "verdict": v.verdict, "reasons": list(v.reasons), "flags": list(v.flags),
                      "notes": list(v.notes), "cases": len(v.cases), "elapsed_s": v.elapsed_s}))  # fmt: skip
    return 0 if v.passed else 1


def check_task(task: Path, sol_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    sol = solution_for(task, sol_dir)
    cmd = [sys.executable, __file__, "--one", str(task), str(sol), "--max-bytes", str(args.max_bytes),
           "--threads", str(args.threads)] + (["--quick"] if args.quick else [])  # fmt: skip
    if args.timeout:
        cmd += ["--timeout", str(args.timeout)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with RssSampler(proc.pid, interval_s=0.05) as sampler:
        try:
            out, err = proc.communicate(timeout=args.task_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            out = ""
            err = f"sweep: no answer in {args.task_timeout} s (killed)\n" + err
    rec: dict[str, Any] = {"task": task.name, "wall_s": round(time.monotonic() - t0, 1),
                           "peak_rss_bytes": sampler.peak.total_bytes, "rc": proc.returncode}  # fmt: skip
    line = next((ln for ln in reversed(out.strip().splitlines()) if ln.startswith("{")), None)
    data = json.loads(line) if line else None
    if data is None:
        tail = err.strip().splitlines()[-3:]
        rec.update(status="harness-error", reasons=[f"rc {proc.returncode}: " + " | ".join(tail)])
    elif data["status"] == "usage":
        rec.update(status="not-loaded" if "task file" in data["error"] else "harness-error",
                   reasons=[data["error"]])  # fmt: skip
    else:
        rec.update(status=data["verdict"], reasons=data["reasons"], flags=data["flags"], notes=data["notes"],
                   cases=data["cases"])  # fmt: skip
        rec["torch_fallback"] = any(f.startswith(FALLBACK_PREFIXES) for f in data["flags"])
    return rec


def summarize(level: int, recs: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    count = collections.Counter(r["status"] for r in recs)
    passed = [r for r in recs if r["status"] == "pass"]
    reasons = collections.Counter(
        re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", r["reasons"][0])[:160] for r in recs if r["status"] == "fail"
    )
    return {
        "level": level,
        "files": len(recs),
        "loaded": len(recs) - count["not-loaded"],
        "pass": len(passed),
        "pass_with_torch_fallback_flag": sum(1 for r in passed if r.get("torch_fallback")),
        "fail": count["fail"],
        "harness_errors": count["harness-error"],
        "not_loaded": count["not-loaded"],
        "top_fail_reasons": reasons.most_common(5),
        "wall_s": round(wall_s, 1),
        "peak_rss_bytes": max((r["peak_rss_bytes"] for r in recs), default=0),
        "tasks": recs,
    }


def print_level(s: dict[str, Any]) -> None:
    loaded = s["loaded"] or 1
    print(f"level {s['level']}: {s['files']} files, {s['loaded']} loaded, "
          f"pass {s['pass']} ({100 * s['pass'] / loaded:.0f}%; {s['pass_with_torch_fallback_flag']} with the "
          f"torch-fallback flag), fail {s['fail']}, harness errors {s['harness_errors']}, "
          f"wall {s['wall_s']:.0f} s, peak memory {describe_bytes(s['peak_rss_bytes'])} (parent + workers)")  # fmt: skip
    for reason, n in s["top_fail_reasons"]:
        print(f"    {n} x {reason}")
    for r in s["tasks"]:
        if r["status"] != "pass":
            print(f"  {r['status']:13s} {r['task']}: {'; '.join(r['reasons'])[:300]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kb_dir", nargs="?", type=Path)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--limit", type=int, help="first N files of each level")
    ap.add_argument("--only", help="comma-separated file name prefixes (e.g. 19_,23_)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--max-bytes", type=_size, default=-1, help="input budget, e.g. 64M (default: auto)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="CheckOptions.quick(): fewer seeds/distributions")
    ap.add_argument("--timeout", type=float, help="seconds per worker request")
    ap.add_argument("--task-timeout", type=float, default=1800.0, help="seconds per task before it is killed")
    ap.add_argument("--json", type=Path, help="write every record and the summaries here")
    ap.add_argument("--one", nargs=2, metavar=("TASK", "SOLUTION"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return run_one(args)
    if args.kb_dir is None:
        ap.error("KB_DIR is required")
    summaries = []
    with tempfile.TemporaryDirectory(prefix="karena-kbsweep-") as tmp:
        for level in args.levels:
            files = sorted((p for p in level_dir(args.kb_dir, level).glob("*.py")), key=task_number)
            if args.only:
                files = [f for f in files if f.name.startswith(tuple(args.only.split(",")))]
            files = files[: args.limit] if args.limit else files
            sol_dir = Path(tmp) / f"level{level}"
            sol_dir.mkdir()
            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                recs = []
                for rec in pool.map(check_task, files, [sol_dir] * len(files), [args] * len(files)):
                    why = "" if rec["status"] == "pass" else f"  {'; '.join(rec['reasons'])[:400]}"
                    print(f"  [{level}] {rec['status']:13s} {rec['wall_s']:7.1f} s "
                          f"{describe_bytes(rec['peak_rss_bytes']):>10s}  {rec['task']}{why}", flush=True)  # fmt: skip
                    recs.append(rec)
                    if args.json:  # kept as it goes: a sweep stopped early still has its records
                        with args.json.with_suffix(".partial.jsonl").open("a") as f:
                            f.write(json.dumps({"level": level, **rec}) + "\n")
            summaries.append(summarize(level, recs, time.monotonic() - t0))
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for s in summaries:
        print_level(s)
    if args.json:
        args.json.write_text(json.dumps({"levels": summaries}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
