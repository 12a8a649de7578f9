"""Which machine kind serves a call mix cheapest at a latency target (Mélange's question).

Inputs: the stored bench records of a suite's tasks (per machine: the fastest verified way to run
each task, i.e. the best passing solution or the baseline it was compared with), the stored
hardware profiles, a price per machine-hour (``--prices prices.toml``) and a call mix (calls per
second per task; default one call/s of every task of the suite).

For each priced machine kind: a task is served at its measured median time; where a task has no
record on that machine but has one elsewhere and both machines have a hardware profile, its time
is *estimated* from the roofline (the same % of roofline as measured elsewhere, the best such).
A machine kind is eligible when every task's per-call time meets the latency target. Machines
needed = ceil(sum(rate x time) / utilization); cost = machines x price. The assumptions are part of
the result (``assumptions``) and printed with it.

prices.toml::

    # USD per machine-hour, keyed by the machine string of the records (``karena report`` shows it)
    [machines."cpu:Intel Xeon Platinum 8480+:2cores"]
    usd_per_hour = 0.085
    name = "c7i.large"          # optional label

mix.toml (optional)::

    [calls_per_s]
    rmsnorm = 200
    swiglu = 50
"""

from __future__ import annotations

import math
import sqlite3
import tomllib
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelarena.errors import UsageError
from kernelarena.store.sqlite import Store

ASSUMPTIONS = (
    "per-call time = the stored median of the fastest verified way to run the task on that machine "
    "(best passing solution, or the baseline it was timed against), at the recorded shape, cache state and threads",
    "one call at a time per machine, using the threads it was timed with; no batching across calls",
    "latency = that median service time; queueing delay and tail latency are not modelled",
    "machines needed = ceil(sum over tasks of calls/s x seconds per call / utilization)",
    "a task with no record on a machine is estimated from the roofline of its hardware profile at the best "
    "% of roofline the task reached on another machine (marked 'estimated'); without profiles it is missing",
    "prices are what prices.toml says; data transfer, storage and start-up costs are not included",
)


@dataclass(frozen=True)
class TaskCost:
    task: str
    calls_per_s: float
    ms_per_call: float | None
    source: str  # "measured: SOLUTION", "estimated from MACHINE", "missing"
    meets_latency: bool


@dataclass(frozen=True)
class MachineOption:
    machine: str
    name: str
    usd_per_hour: float
    eligible: bool
    machines_needed: int | None
    usd_per_hour_total: float | None
    usd_per_million_calls: float | None
    busy_fraction: float | None  # sum of rate x time: machine-seconds per second
    tasks: tuple[TaskCost, ...]
    why_not: tuple[str, ...] = ()
    profile: dict[str, Any] | None = None


@dataclass(frozen=True)
class Advice:
    suite: str
    latency_ms: float | None
    utilization: float
    options: tuple[MachineOption, ...]  # cheapest eligible first, then the ineligible
    best: str | None
    assumptions: tuple[str, ...] = ASSUMPTIONS
    notes: tuple[str, ...] = field(default=())


def read_prices(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--prices {path}: {exc}") from None
    machines = data.get("machines")
    if not isinstance(machines, dict) or not machines:
        raise UsageError(f'--prices {path}: no [machines."MACHINE"] tables (usd_per_hour = ...)')
    out = {}
    for m, entry in machines.items():
        price = entry.get("usd_per_hour") if isinstance(entry, dict) else None
        if not isinstance(price, int | float) or isinstance(price, bool) or price <= 0:
            raise UsageError(f"--prices {path}: machine {m!r} needs a positive usd_per_hour")
        out[m] = {"usd_per_hour": float(price), "name": str(entry.get("name", m))}
    return out


def read_mix(path: Path | None, tasks: list[str]) -> dict[str, float]:
    if path is None:
        return {t: 1.0 for t in tasks}
    try:
        rates = tomllib.loads(path.read_text()).get("calls_per_s", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--mix {path}: {exc}") from None
    unknown = sorted(set(rates) - set(tasks))
    if unknown:
        raise UsageError(f"--mix {path}: not tasks of the suite: {', '.join(unknown)}")
    mix = {t: float(r) for t, r in rates.items() if float(r) > 0}
    if not mix:
        raise UsageError(f"--mix {path}: [calls_per_s] lists no task with a positive rate")
    return mix


def _machine_of(device: str, result: dict[str, Any]) -> str:
    node = result.get("node")
    return device + (f" @ {node}" if node else "")


def fastest_times(db: Path, tasks: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """machine -> task -> {ms, source, percent_of_roofline, flops, bytes_moved} from bench records."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with Store(db) as store:
        for r in store.records(kind="bench"):
            if r["task"] not in tasks:
                continue
            res = r["payload"].get("result") or {}
            machine = _machine_of(r["device"], res)
            if r["verdict"] != "pass":  # a failed run's timings (its baseline's too) are not used
                continue
            cands = []
            cand, base = res.get("candidate") or {}, res.get("baseline") or {}
            if cand.get("median_ms"):
                cands.append((cand["median_ms"], f"measured: {Path(r['solution'] or '?').name}",
                              res.get("percent_of_roofline")))  # fmt: skip
            if base.get("median_ms"):
                cands.append((base["median_ms"], f"measured: baseline {r['baseline']}", None))
            for ms, source, pct in cands:
                cur = out.setdefault(machine, {}).get(r["task"])
                if cur is None or ms < cur["ms"]:
                    out[machine][r["task"]] = {"ms": ms, "source": source, "percent_of_roofline": pct,
                                               "flops": res.get("flops"), "bytes_moved": res.get("bytes_moved")}  # fmt: skip
    return out


def profiles_by_machine(db: Path) -> dict[str, Any]:
    """Record machine string ("cpu:MODEL:Ncores") -> stored HardwareProfile, matched by device name
    and core count (the records' device id does not carry the profile's machine id)."""
    from kernelarena.hw.profile import HardwareProfile

    with closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            rows = conn.execute("SELECT profile_json FROM hw_profiles").fetchall()
        except sqlite3.OperationalError:
            return {}
    out: dict[str, Any] = {}
    for (blob,) in rows:
        try:
            p = HardwareProfile.from_json(blob)
        except (ValueError, TypeError, KeyError):
            continue
        key = f"{p.kind}:{p.device_name}:{p.cores}cores"
        if key not in out or p.threads_used > out[key].threads_used:
            out[key] = p
    return out


def _estimate(task: str, machine: str, times: dict[str, dict[str, dict[str, Any]]], profiles: dict[str, Any]) -> tuple[float, str] | None:  # fmt: skip
    from kernelarena.hw.roofline import roofline_ms

    prof = profiles.get(machine.split(" @ ")[0])
    if prof is None:
        return None
    best: tuple[float, str] | None = None
    for other, per_task in times.items():
        rec = per_task.get(task)
        if other == machine or rec is None or not rec.get("percent_of_roofline"):
            continue
        bound = roofline_ms(prof, rec.get("flops") or 0.0, rec.get("bytes_moved") or 0.0)
        ms = bound / (rec["percent_of_roofline"] / 100.0)
        if best is None or ms < best[0]:
            best = (ms, f"estimated from {other} ({rec['percent_of_roofline']:.0f}% of roofline there)")
    return best


def advise(
    db: Path,
    suite_tasks: list[str],
    suite: str,
    prices: dict[str, dict[str, Any]],
    mix: dict[str, float],
    latency_ms: float | None = None,
    utilization: float = 0.7,
) -> Advice:
    if not 0 < utilization <= 1:
        raise UsageError(f"--utilization must be in (0, 1], got {utilization}")
    times = fastest_times(db, suite_tasks)
    profiles = profiles_by_machine(db)
    total_rate = sum(mix.values())
    notes = []
    unpriced = sorted(set(times) - set(prices))
    if unpriced:
        notes.append(f"machines with records but no price (not considered): {', '.join(unpriced)}")
    options = []
    for machine, price in prices.items():
        per_task = times.get(machine, {})
        rows, why = [], []
        busy = 0.0
        for task, rate in sorted(mix.items()):
            rec = per_task.get(task)
            if rec is not None:
                ms, source = rec["ms"], rec["source"]
            else:
                est = _estimate(task, machine, times, profiles)
                ms, source = est if est else (None, "missing")
            ok = ms is not None and (latency_ms is None or ms <= latency_ms)
            if ms is None:
                why.append(f"{task}: no record on this machine and no estimate")
            elif not ok:
                why.append(f"{task}: {ms:.3g} ms per call > latency target {latency_ms:g} ms")
            rows.append(TaskCost(task, rate, ms, source, ok))
            if ms is not None:
                busy += rate * ms / 1e3
        eligible = not why
        need = max(1, math.ceil(busy / utilization - 1e-9)) if eligible else None
        total = need * price["usd_per_hour"] if need else None
        per_m = total / (3600 * total_rate) * 1e6 if total and total_rate else None
        prof = profiles.get(machine.split(" @ ")[0])
        options.append(
            MachineOption(
                machine,
                price["name"],
                price["usd_per_hour"],
                eligible,
                need,
                total,
                per_m,
                busy if eligible else None,
                tuple(rows),
                tuple(why),
                {
                    "device_name": prof.device_name,
                    "mem_bw_bytes_per_s": prof.mem_bw_bytes_per_s,
                    "peak_flops_fp32": prof.peak_flops_fp32,
                    "threads_used": prof.threads_used,
                }
                if prof
                else None,
            )
        )
    options.sort(key=lambda o: (not o.eligible, o.usd_per_hour_total or math.inf, o.machine))
    best = options[0].machine if options and options[0].eligible else None
    return Advice(suite, latency_ms, utilization, tuple(options), best, notes=tuple(notes))


def render(a: Advice) -> str:
    lines = [f"advice for suite {a.suite}: "
             + (f"cheapest at a {a.latency_ms:g} ms latency target: {a.best}" if a.best and a.latency_ms
                else f"cheapest: {a.best}" if a.best else "no priced machine kind can serve this mix")]  # fmt: skip
    for o in a.options:
        if o.eligible:
            lines.append(f"  {o.name} ({o.machine}): {o.machines_needed} x ${o.usd_per_hour:g}/h = "
                         f"${o.usd_per_hour_total:.4g}/h, ${o.usd_per_million_calls:.4g} per million calls, "
                         f"busy {o.busy_fraction:.3g} machine-s/s")  # fmt: skip
        else:
            lines.append(f"  {o.name} ({o.machine}): not eligible: {'; '.join(o.why_not[:3])}")
        for t in o.tasks:
            ms = "-" if t.ms_per_call is None else f"{t.ms_per_call:.4g} ms"
            lines.append(f"      {t.task:<28} {t.calls_per_s:>8g}/s  {ms:>12}  {t.source}")
    lines.append("assumptions:")
    lines += [f"  - {x}" for x in a.assumptions]
    lines += [f"note: {n}" for n in a.notes]
    return "\n".join(lines)
