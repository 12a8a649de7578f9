"""What a report shows, as one JSON-able dict: the terminal table, ``--json`` and the HTML page
all read this, so the page's numbers are the JSON's numbers.

Shape (every key always present)::

    {
      "records":    [row, ...],   # latest bench record per (task, solution, baseline, machine): bench_row,
                                  # with the per-call metrics (metric_fields: peak_mem_mib, alloc_mib,
                                  # overhead_us, overhead_vs_compute, energy_mj, metrics_unavailable)
      "history":    [{"task", "solution", "baseline", "machine", "created_at", "speedup",
                      "speedup_ci", "verdict"}, ...],          # every bench record, oldest first
      "roofs":      [{"machine_id", "device_name", "mem_bw_bytes_per_s", "peak_flops"}, ...],
      "agent_runs": [{"run", "task", "round", "best_speedup", "correct_rate"}, ...],
      "notes":      [str, ...],
    }

``agent_runs`` is the data shape of the agent-convergence chart: one row per (run, round), where
``best_speedup`` is the best verified speedup so far (null before the first) and ``correct_rate``
the fraction of the run's candidates so far that passed. It is computed from the agent's attempts
(``agent_attempts``) when the store has any; the page says "no agent runs" otherwise.
"""

from __future__ import annotations

import datetime
import functools
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from kernelarena.store.sqlite import Store

COMPARABLE_NOTE = (
    "Timings are comparable only within one machine (and, on a cluster, one node): filter by "
    "machine before comparing speedups or milliseconds across rows."
)


@functools.cache
def _suite_of_task() -> dict[str, str]:
    """Built-in task name -> suite name, from the package's suites folder."""
    root = Path(__file__).resolve().parent.parent / "tasks" / "suites"
    return {p.stem: p.parent.name for p in root.glob("*/*.py") if not p.stem.startswith("_")}


@functools.cache
def _backend_of(solution: str) -> str:
    from kernelarena.backends.registry import detect_backend

    try:
        return detect_backend(Path(solution).read_text(errors="replace"))
    except OSError:
        return "unknown"


def _run_of(created_at: float, runs: list[dict[str, Any]]) -> str:
    for run in runs:
        end = run["finished_at"] or float("inf")
        if run["started_at"] <= created_at <= end:
            return run["label"]
    return "single bench"


def bench_row(r: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One stored bench record as a report row (flat, JSON-able)."""
    res = r["payload"]["result"]
    cand, base = res.get("candidate") or {}, res.get("baseline") or {}
    solution = r["solution"] or ""
    node = res.get("node")
    return {
        "task": r["task"],
        "suite": _suite_of_task().get(r["task"], "-"),
        "solution": Path(solution).name,
        "backend": _backend_of(solution) if solution else "-",
        "baseline": r["baseline"],
        "machine": r["device"] + (f" @ {node}" if node else ""),
        "run": _run_of(r["created_at"], runs),
        "created_at": r["created_at"],
        "verdict": r["verdict"],
        "speedup": res.get("speedup"),
        "speedup_ci": res.get("speedup_ci"),
        "candidate_ms": cand.get("median_ms"),
        "baseline_ms": base.get("median_ms"),
        "percent_of_roofline": res.get("percent_of_roofline"),
        "flops": res.get("flops"),
        "bytes_moved": res.get("bytes_moved"),
        "cache": cand.get("cache"),
        "mode": cand.get("mode"),
        "device": r["device"],
        "reasons": (res.get("verdict") or {}).get("reasons", []) + res.get("reasons", []),
        **metric_fields(res.get("metrics")),
    }


def metric_fields(m: dict[str, Any] | None) -> dict[str, Any]:
    """The per-call metrics of a bench record as flat report fields (None where not measured);
    ``metrics_unavailable`` holds the stated reasons (e.g. no RAPL counters on this machine)."""
    m = m or {}

    def scaled(key: str, factor: float) -> float | None:
        v = m.get(key)
        return None if v is None else v * factor

    return {
        "peak_mem_mib": scaled("peak_rss_added_bytes", 1 / 2**20),
        "device_mem_mib": scaled("peak_device_bytes", 1 / 2**20),
        "alloc_mib": scaled("torch_allocated_bytes", 1 / 2**20),
        "overhead_us": scaled("small_overhead_ms", 1e3),
        "overhead_vs_compute": m.get("overhead_vs_compute"),
        "small_variant": m.get("small_variant"),
        "energy_mj": scaled("energy_j_per_call", 1e3),
        "metrics_unavailable": list(m.get("unavailable", [])) if m else ["per-call metrics not recorded"],
    }


def _suite_runs(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT suite, started_at, finished_at FROM suite_runs ORDER BY started_at"
        ).fetchall()
    return [
        {
            "label": f"{Path(s).name} {datetime.datetime.fromtimestamp(t0, datetime.UTC):%Y-%m-%d %H:%M}",
            "started_at": t0,
            "finished_at": t1,
        }
        for s, t0, t1 in rows
    ]


def _roofs(db: Path) -> list[dict[str, Any]]:
    from kernelarena.hw.profile import HardwareProfile

    with closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            rows = conn.execute("SELECT profile_json FROM hw_profiles").fetchall()
        except sqlite3.OperationalError:  # no profile measured with this database yet
            return []
    out = []
    for (blob,) in rows:
        try:
            p = HardwareProfile.from_json(blob)
        except (ValueError, TypeError, KeyError):
            continue
        out.append(
            {
                "machine_id": p.machine_id,
                "device_name": p.device_name,
                "mem_bw_bytes_per_s": p.mem_bw_bytes_per_s,
                "peak_flops": p.peak_flops_fp32,
            }
        )
    return out


def agent_runs(db: Path) -> list[dict[str, Any]]:
    """One row per (agent run, round) from the agent's attempts (``agent/records.py``).

    ``best_speedup``: the best verified speedup up to and including that round (None before the
    first verified one); ``correct_rate``: the share of the run's attempts up to that round that
    passed verification. [] when the store holds no agent run."""
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            rows = conn.execute(
                "SELECT a.run_id, r.task, a.round, a.passed, a.speedup FROM agent_attempts a "
                "JOIN agent_runs r ON r.run_id = a.run_id ORDER BY a.run_id, a.round, a.candidate"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
    out: list[dict[str, Any]] = []
    state: dict[str, tuple[float | None, int, int]] = {}  # run -> (best, passed, attempts)
    for run, task, rnd, passed, speedup in rows:
        best, n_ok, n = state.get(run, (None, 0, 0))
        n, n_ok = n + 1, n_ok + (1 if passed else 0)
        if passed and speedup is not None and (best is None or speedup > best):
            best = float(speedup)
        state[run] = (best, n_ok, n)
        row = {"run": run, "task": task, "round": int(rnd), "best_speedup": best, "correct_rate": n_ok / n}
        if out and out[-1]["run"] == run and out[-1]["round"] == row["round"]:
            out[-1] = row  # several candidates in one round (evolution): the round's final state
        else:
            out.append(row)
    return out


def report_data(db: Path, task: str | None = None) -> dict[str, Any]:
    """Everything a report shows, read from the store at ``db`` (see the module docstring)."""
    with Store(db) as store:
        bench = list(store.records(kind="bench", task=task))
    runs = _suite_runs(db)
    latest: dict[
        tuple[str, str, str, str], dict[str, Any]
    ] = {}  # per machine: timings compare only within one
    history = []
    for r in bench:  # records come oldest first
        row = bench_row(r, runs)
        latest[(r["task"], r["solution"] or "", r["baseline"] or "", row["machine"])] = row
        history.append({k: row[k] for k in ("task", "solution", "baseline", "machine", "created_at", "speedup",
                                            "speedup_ci", "verdict")})  # fmt: skip
    notes = [COMPARABLE_NOTE]
    nodes = sorted({row["machine"] for row in latest.values() if " @ " in row["machine"]})
    if nodes:
        notes.append(
            f"{len(nodes)} record machine(s) are Ray cluster nodes ({', '.join(nodes[:6])}): each node is "
            "its own machine in the table and the filters; a speedup measured on one node says nothing "
            "about another, even of the same model"
        )
    data = {
        "records": [latest[k] for k in sorted(latest)],
        "history": history,
        "roofs": _roofs(db),
        "agent_runs": agent_runs(db),
        "notes": notes,
    }
    json.dumps(data)  # fail here, not in the page, if something is not JSON-able
    return data
