"""The machine profile: what this CPU (or GPU) can do, measured, plus what sysfs says about it.

A :class:`HardwareProfile` is the yardstick of the roofline check (see :mod:`kernelarena.hw.roofline`):
the verifier flags a kernel that runs faster than the machine's measured peak allows. Everything
here is stdlib-only and cheap; the measurements live in :mod:`kernelarena.hw.cpu` and
:mod:`kernelarena.hw.cuda`.

Example::

    from kernelarena.hw import measure_cpu, describe
    print(describe(measure_cpu(quick=True)))
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Bumped whenever a field changes meaning; stored profiles of another version are re-measured.
SCHEMA_VERSION = 1

SYSFS_CPU0_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
LLC_FALLBACK_BYTES = 32 << 20
#: The one cold-cache policy (the timer flushes before every timed call): 2x the LLC, capped so a
#: flush costs ~10 ms, not ~100 ms, on VMs that report the host's whole LLC (480 MiB here).
FLUSH_BUFFER_CAP_BYTES = 64 << 20

Curve = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class HardwareProfile:
    """Measured peaks of one machine (``kind`` "cpu") or one GPU (``kind`` "cuda").

    Bandwidths count bytes as STREAM does (each array read or written once per pass; no
    write-allocate traffic), the same convention as a task's ``bytes_moved``. All figures are PEAK
    (best sample), so an honest kernel should not beat them; medians are kept for reports.
    """

    machine_id: str
    kind: str  # "cpu" or "cuda"
    device_name: str
    cpu_model: str
    cores: int
    threads_used: int
    l1d_bytes: int | None  # per core, as sysfs reports it; None when unknown
    l2_bytes: int | None
    llc_bytes: int | None  # last-level cache (per instance; on a GPU its L2)
    mem_bw_bytes_per_s: float  # best bandwidth at the largest working sets (DRAM / HBM plateau)
    bw_curve: Curve  # working-set bytes -> attainable (peak) bytes/s, increasing sizes; see measure_cpu
    bw_curve_median: Curve  # same sizes, median bytes/s of the best kernel at threads_used
    kernel_bw: tuple[tuple[str, float], ...]  # per kernel (copy, triad, ...) best bytes/s at the largest size
    peak_flops_fp32: float  # max of the fp32 figures below
    gemm_flops_fp32: float
    fma_flops_fp32: float | None  # CPU: hand-written FMA kernel; None on GPU
    measured_at: str  # ISO 8601, UTC
    quick: bool = False  # a quick (short, smaller sizes) measurement; replaced by a full one when asked
    sm_count: int | None = None
    gemm_flops_tf32: float | None = None
    peak_flops_fp16: float | None = None
    mem_total_bytes: int = 0
    bw_curve_1t: Curve = ()  # CPU: the same curve measured with one thread
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HardwareProfile:
        """Inverse of :meth:`to_json`; raises ValueError for another schema or missing fields."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("hardware profile JSON must be an object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"hardware profile schema {data.get('schema_version')} != {SCHEMA_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING} - set(data)
        if missing:
            raise ValueError(f"hardware profile JSON lacks {sorted(missing)}")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in names}
        for key in ("bw_curve", "bw_curve_median", "bw_curve_1t"):
            kwargs[key] = tuple((int(s), float(b)) for s, b in kwargs.get(key, ()))
        kwargs["kernel_bw"] = tuple((str(k), float(b)) for k, b in kwargs["kernel_bw"])
        kwargs["notes"] = tuple(kwargs.get("notes", ()))
        return cls(**kwargs)


# ---------------------------------------------------------------- sysfs / procfs readers


def parse_size(text: str) -> int:
    """'48K' -> 49152 (sysfs cache sizes); plain numbers are bytes."""
    text = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if mult != 1 else text) * mult


def read_cache_sizes(root: Path = SYSFS_CPU0_CACHE) -> dict[str, int]:
    """Cache sizes of cpu0 from sysfs: keys ``l1d``, ``l2``, ``llc`` (absent when unknown)."""
    levels: dict[int, int] = {}
    l1d = None
    try:
        entries = sorted(root.glob("index*"))
    except OSError:
        return {}
    for entry in entries:
        try:
            level = int((entry / "level").read_text())
            kind = (entry / "type").read_text().strip()
            size = parse_size((entry / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        if level == 1 and kind == "Data":
            l1d = size
        levels[level] = max(size, levels.get(level, 0))
    out: dict[str, int] = {}
    if l1d:
        out["l1d"] = l1d
    if levels.get(2):
        out["l2"] = levels[2]
    if levels and max(levels) >= 2:
        out["llc"] = levels[max(levels)]
    return out


def llc_bytes_at(root: Path) -> int:
    return read_cache_sizes(root).get("llc", LLC_FALLBACK_BYTES)


@functools.cache
def llc_bytes() -> int:
    """Last-level cache size of this CPU from sysfs (fast); 32 MiB when sysfs does not say.

    Used by the timer to size its cache-flush buffer (see :func:`flush_buffer_bytes`).
    """
    return llc_bytes_at(SYSFS_CPU0_CACHE)


def flush_buffer_bytes(factor: float = 2.0) -> int:
    """Bytes to stream through to evict the LLC: ``factor`` x LLC, capped at 64 MiB.

    The one flush size of the project (the CPU timer uses it before every cold-cache call). The cap
    matters on VMs that report the host's whole LLC (480 MiB here): a larger flush before every
    call costs more time than it buys in coldness.
    """
    return int(min(FLUSH_BUFFER_CAP_BYTES, max(1 << 20, factor * llc_bytes())))


def physical_cores(root: Path = Path("/sys/devices/system/cpu")) -> int:
    """Distinct (package, core) pairs in sysfs: SMT siblings share a core's caches and FMA units."""
    cores = set()
    for topo in root.glob("cpu[0-9]*/topology"):
        try:
            cores.add(
                ((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip())
            )
        except OSError:
            continue
    return len(cores) or os.cpu_count() or 1


def cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _meminfo(field: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def mem_total_bytes() -> int:
    total = _meminfo("MemTotal")
    if not total and hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            total = 0
    return total


def mem_available_bytes() -> int:
    return _meminfo("MemAvailable") or mem_total_bytes() // 2


def stable_id(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cpu_machine_id() -> str:
    """Stable id of this CPU machine: model, core count, memory (whole GiB), cache sizes.

    Memory is rounded because MemTotal shifts by a few kB between boots; the torch version is
    deliberately not part of it (a profile survives upgrades; re-measure with ``refresh``).
    """
    caches = read_cache_sizes()
    return stable_id(
        {
            "kind": "cpu",
            "arch": platform.machine(),
            "model": cpu_model_name(),
            "cores": os.cpu_count() or 1,
            "mem_gib": round(mem_total_bytes() / (1 << 30)),
            "caches": [caches.get("l1d"), caches.get("l2"), caches.get("llc")],
        }
    )


# ---------------------------------------------------------------- human summary


def fmt_bytes(n: float | None) -> str:
    if not n:
        return "?"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{int(n)} B"


def _short(n: int) -> str:
    return fmt_bytes(n).replace(" KiB", "K").replace(" MiB", "M").replace(" GiB", "G")


def curve_knees(curve: Curve, drop: float = 0.75) -> list[tuple[int, int, float]]:
    """(size_before, size_after, ratio) where bandwidth falls below ``drop`` x the previous point."""
    knees = []
    for (s0, b0), (s1, b1) in itertools.pairwise(curve):
        if b0 > 0 and b1 / b0 < drop:
            knees.append((s0, s1, b1 / b0))
    return knees


def describe(profile: HardwareProfile) -> str:
    """A few human lines for ``karena hw``: cores, caches, bandwidth curve and knees, peaks."""
    p = profile
    gb = 1e9
    head = f"{p.kind}: {p.device_name}"
    if p.kind == "cpu":
        head += f", {p.cores} cores ({p.threads_used} threads used)"
    elif p.sm_count:
        head += f", {p.sm_count} SMs (host: {p.cpu_model})"
    lines = [head + f"  [machine {p.machine_id}]"]
    caches = ", ".join(
        f"{name} {fmt_bytes(size)}"
        for name, size in (("L1d", p.l1d_bytes), ("L2", p.l2_bytes), ("LLC", p.llc_bytes))
        if size and not (name == "LLC" and p.kind == "cuda")  # a GPU's LLC is its L2
    )
    if p.mem_total_bytes:
        caches += f"; memory {fmt_bytes(p.mem_total_bytes)}"
    lines.append(f"caches: {caches or 'unknown'}")
    mem_kind = "HBM" if p.kind == "cuda" else "memory"
    winners = ", ".join(f"{k} {b / gb:.1f}" for k, b in sorted(p.kernel_bw, key=lambda kb: -kb[1]))
    largest = p.bw_curve[-1][0] if p.bw_curve else 0
    lines.append(
        f"{mem_kind} bandwidth: {p.mem_bw_bytes_per_s / gb:.1f} GB/s at {fmt_bytes(largest)} (by kernel: {winners})"
    )
    if p.bw_curve:
        cells = [f"{_short(s)} {b / gb:.0f}" for s, b in p.bw_curve]
        for i in range(0, len(cells), 8):
            lines.append(
                ("bandwidth curve GB/s: " if i == 0 else "                      ")
                + " | ".join(cells[i : i + 8])
            )
        if p.bw_curve_1t:
            cells = [f"{_short(s)} {b / gb:.0f}" for s, b in p.bw_curve_1t]
            for i in range(0, len(cells), 8):
                lines.append(
                    ("  one thread, GB/s:   " if i == 0 else "                      ")
                    + " | ".join(cells[i : i + 8])
                )
        knees = curve_knees(p.bw_curve)
        if knees:
            lines.append("knees: " + ", ".join(f"{_short(a)}->{_short(b)} (x{r:.2f})" for a, b, r in knees))
    flops = f"peak fp32: {p.peak_flops_fp32 / gb:.1f} GFLOP/s (GEMM {p.gemm_flops_fp32 / gb:.1f}"
    if p.fma_flops_fp32:
        flops += f", FMA kernel {p.fma_flops_fp32 / gb:.1f}"
    if p.gemm_flops_tf32:
        flops += f", TF32 GEMM {p.gemm_flops_tf32 / gb:.1f}"
    flops += ")"
    if p.peak_flops_fp16:
        flops += f"; fp16 GEMM {p.peak_flops_fp16 / gb:.1f} GFLOP/s"
    lines.append(flops)
    if p.mem_bw_bytes_per_s > 0 and math.isfinite(p.peak_flops_fp32):
        lines.append(f"ridge point: {p.peak_flops_fp32 / p.mem_bw_bytes_per_s:.1f} flop/byte")
    lines.append(f"measured {p.measured_at}" + (" (quick)" if p.quick else ""))
    lines.extend(f"note: {n}" for n in p.notes)
    return "\n".join(lines)
