"""The hardware facts the search needs (cache sizes, cores, vector width, a machine id).

Prefers the static readers of ``kernelarena.hw.profile`` (owned by another module) when it is
importable and falls back to reading ``/sys`` and ``/proc`` here, so lite spaces can reason about
the machine either way. The machine id adds the ISA flags and the C compiler's version to the
profile's id: tuning records are only valid for the code gcc generates on this CPU.
Everything is behind :func:`hardware`; switch the source there and nothing else changes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HwInfo:
    """Per-core L1d/L2, shared last-level cache, usable cores and SIMD width of this machine."""

    l1d_bytes: int
    l2_bytes: int
    llc_bytes: int
    cores: int
    simd_bits: int
    cpu_model: str
    machine_id: str

    @property
    def simd_floats(self) -> int:
        """fp32 lanes of one vector register (16 with AVX-512, 8 with AVX2, 4 otherwise)."""
        return max(1, self.simd_bits // 32)

    @property
    def vector_regs(self) -> int:
        """Architectural vector registers (32 zmm with AVX-512, 16 ymm/xmm otherwise): what a
        template's register blocking must fit."""
        return 32 if self.simd_bits >= 512 else 16

    def features(self) -> dict[str, float]:
        """Numeric description for the cost model (log2 of sizes, so machines compare by ratio)."""
        import math

        return {
            "hw_log2_l1d": math.log2(max(1, self.l1d_bytes)),
            "hw_log2_l2": math.log2(max(1, self.l2_bytes)),
            "hw_log2_llc": math.log2(max(1, self.llc_bytes)),
            "hw_cores": float(self.cores),
            "hw_simd_floats": float(self.simd_floats),
        }


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if text.endswith(suffix):
            text, mult = text[: -len(suffix)], m
            break
    try:
        return int(float(text) * mult)
    except ValueError:
        return 0


def _sys_caches() -> dict[str, int]:
    """Cache sizes of cpu0 from sysfs: {"L1d": ..., "L2": ..., "L3": ...} (bytes)."""
    out: dict[str, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            level = (idx / "level").read_text().strip()
            kind = (idx / "type").read_text().strip()
            size = _parse_size((idx / "size").read_text())
        except OSError:
            continue
        if kind == "Instruction":
            continue
        name = "L1d" if level == "1" else f"L{level}"
        out[name] = max(out.get(name, 0), size)
    return out


def _cpuinfo() -> tuple[str, set[str]]:
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _from_sys() -> HwInfo:
    caches = _sys_caches()
    model, flags = _cpuinfo()
    simd = 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
    l1 = caches.get("L1d") or 32 << 10
    l2 = caches.get("L2") or 1 << 20
    llc = caches.get("L3") or l2
    return HwInfo(l1, l2, llc, _cores(), simd, model, _machine_id(flags))


def _machine_id(flags: set[str]) -> str:
    """The machine id of ``kernelarena.hw`` (the one id of the store) plus what changes a compiled
    kernel on the same machine (ISA flags, compiler): records from another id are not reused."""
    from kernelarena.backends.c import compiler_version
    from kernelarena.hw.profile import cpu_machine_id

    blob = "|".join([cpu_machine_id(), " ".join(sorted(flags)), compiler_version()])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _from_profile() -> HwInfo | None:
    """Use ``kernelarena.hw.profile``'s cheap static readers (sysfs caches, physical cores, machine id).

    Its measured :class:`HardwareProfile` (bandwidth, FLOP/s) costs seconds to obtain and the search
    needs only the static facts, so only those are read here.
    """
    try:
        prof = importlib.import_module("kernelarena.hw.profile")
    except ImportError:
        return None
    try:
        caches: dict[str, int] = dict(prof.read_cache_sizes())
        cores = min(int(prof.physical_cores()), _cores())
        model = str(prof.cpu_model_name())
    except Exception as exc:  # another module's bug must not stop tuning
        log.warning("kernelarena.hw.profile unusable (%s); reading /sys directly", exc)
        return None
    fallback = _from_sys()
    return HwInfo(
        l1d_bytes=int(caches.get("l1d") or fallback.l1d_bytes),
        l2_bytes=int(caches.get("l2") or fallback.l2_bytes),
        llc_bytes=int(caches.get("llc") or fallback.llc_bytes),
        cores=max(1, cores),
        simd_bits=fallback.simd_bits,
        cpu_model=model,
        machine_id=fallback.machine_id,
    )


@functools.cache
def hardware() -> HwInfo:
    """This machine's :class:`HwInfo` (cached for the process)."""
    prof = _from_profile()
    return prof if prof is not None else _from_sys()
