"""Per-call metrics beside the time: peak memory, allocations, fixed overhead, energy.

Each figure states how it was measured (``methods``) or why it is unavailable (``unavailable``):

- **peak resident memory added by a call**: the parent resets the candidate worker's RSS
  high-water mark (``5`` to ``/proc/PID/clear_refs``) after the worker gave its free heap back
  (``malloc_trim``), then reads ``VmHWM - VmRSS`` around one call from ``/proc/PID/status``. It
  counts everything the call touches for the first time: torch tensors, native ``malloc``, NumPy,
  thread stacks. Memory a solution allocated in its constructor and keeps across calls is *not*
  added by the call (it is in the worker's baseline). A solution can reset its own high-water mark
  (it runs in that process): the figure is a measurement, not a proof.
- **device memory** (CUDA): ``torch.cuda.max_memory_allocated()`` above the allocation before the call.
- **torch bytes allocated per call**: new tensor storage created by torch operators in one call
  (a dispatch mode sums the output storages not seen before); native allocations are not in it.
- **fixed overhead at the smallest variant**: a two-point fit ``time = overhead + work x cost`` over
  the headline and the smallest variant (work: ``bytes_moved``, else ``flops``, else input bytes),
  both timed warm (back-to-back; a cold small call measures the thread hand-off after the cache
  flush, not the call); ``overhead_vs_compute`` is overhead / (small call - overhead).
- **energy per call**: RAPL package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``) on a
  CPU or NVML's total-energy counter on a GPU, read by the parent around a batch of back-to-back
  warm calls, divided by the call count. It includes the package's idle and background power.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

from kernelarena.types import CallMetrics
from kernelarena.worker_client import CallMetricsReply, CaseReply, SetupTiming, TimeBatch, WorkerClient

log = logging.getLogger(__name__)

POWERCAP = Path("/sys/class/powercap")


# --- /proc ------------------------------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss(pid: int) -> str | None:
    """Reset ``pid``'s RSS high-water mark; the reason when it cannot be done."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        return f"cannot reset the high-water mark (/proc/{pid}/clear_refs: {exc.strerror})"
    return None


def peak_rss_around(pid: int, call: Any) -> tuple[int | None, str | None]:
    """Bytes by which ``pid``'s resident set peaked above its size before ``call()``."""
    problem = reset_peak_rss(pid)
    if problem:
        return None, problem
    before = _status_kib(pid, "VmRSS")
    call()
    peak = _status_kib(pid, "VmHWM")
    if before is None or peak is None:
        return None, "VmRSS/VmHWM not readable in /proc/PID/status"
    return max(0, peak - before) * 1024, None


# --- energy -----------------------------------------------------------------------------------


class _Rapl:
    """Sum of the top-level RAPL package domains (intel-rapl:N), wrap-around handled."""

    def __init__(self, zones: list[Path]):
        self.zones = zones
        self.ranges = [int((z / "max_energy_range_uj").read_text()) for z in zones]

    def read_j(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def joules(self, a: list[int], b: list[int]) -> float:
        return sum(((y - x) % r if r else y - x) for x, y, r in zip(a, b, self.ranges, strict=True)) / 1e6


def rapl() -> tuple[_Rapl | None, str]:
    """A RAPL reader, or None and the reason none is readable here."""
    if not POWERCAP.is_dir():
        return None, f"{POWERCAP} does not exist (no RAPL/powercap driver, e.g. in a VM or container)"
    zones = sorted(p for p in POWERCAP.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not zones:
        return None, f"no intel-rapl package domain under {POWERCAP}"
    try:
        reader = _Rapl(zones)
        reader.read_j()
    except OSError as exc:
        return None, f"RAPL counters not readable ({exc.strerror}: energy_uj is root-only on recent kernels)"
    return reader, "RAPL package energy (" + ", ".join(z.name for z in zones) + ")"


class _Nvml:
    """NVML's total energy counter (mJ since driver load) of one GPU, through ctypes."""

    def __init__(self, index: int):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        if self.lib.nvmlInit_v2() != 0:
            raise OSError("nvmlInit failed")
        self.handle = ctypes.c_void_p()
        if self.lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self.handle)) != 0:
            raise OSError(f"no NVML device {index}")
        self.read_j()

    def read_j(self) -> int:
        mj = ctypes.c_ulonglong()
        rc = self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(mj))
        if rc != 0:
            raise OSError(f"nvmlDeviceGetTotalEnergyConsumption returned {rc} (not supported on this GPU?)")
        return int(mj.value)

    def joules(self, a: int, b: int) -> float:
        return (b - a) / 1e3


def nvml(index: int = 0) -> tuple[_Nvml | None, str]:
    try:
        return _Nvml(index), f"NVML total energy of GPU {index}"
    except (OSError, AttributeError) as exc:
        return None, f"NVML energy counter not readable: {exc}"


def energy_reader(device: str) -> tuple[Any | None, str]:
    return nvml() if device == "cuda" else rapl()


# --- the overhead fit -------------------------------------------------------------------------


def overhead_fit(
    head_ms: float, head_work: float, small_ms: float, small_work: float
) -> tuple[float | None, float | None]:
    """(overhead ms, overhead / compute at the small size) from ``time = overhead + work x cost``.

    None when the two points cannot separate the terms (equal work). The overhead is clipped to
    [0, small_ms]. When the fit leaves no compute at the small size (the small call is not faster
    than the work ratio allows, e.g. thread wake-up dominates), the compute is taken as the
    headline's time scaled by the work ratio, an upper bound, so the ratio stays finite.

    >>> overhead_fit(10.1, 1000.0, 0.2, 10.0)  # 0.1 ms overhead, 0.1 ms compute at the small size
    (0.1, 1.0)
    """
    if head_work <= small_work or head_work <= 0 or small_work <= 0 or head_ms <= 0:
        return None, None
    cost = (head_ms - small_ms) / (head_work - small_work)
    overhead = min(max(small_ms - cost * small_work, 0.0), small_ms)
    compute = small_ms - overhead
    if compute <= 1e-12:
        compute = head_ms * small_work / head_work
    return round(overhead, 9), round(overhead / compute, 9)


# --- orchestration (parent side) --------------------------------------------------------------

RSS_METHOD = (
    "peak RSS added: VmHWM - VmRSS of the candidate worker around one call, read by the parent from "
    "/proc/PID/status after malloc_trim and a high-water-mark reset (clear_refs 5); smaller of two calls"
)
ALLOC_METHOD = (
    "torch bytes allocated: new tensor storage created by torch operators in one call (dispatch "
    "mode); native malloc/NumPy allocations are not counted here (they are in the peak RSS)"
)


def call_memory(
    worker: WorkerClient, device: str = "cpu", repeats: int = 2
) -> tuple[dict[str, Any], str | None]:
    """Peak memory of one call of the model ``setup_timing`` left in ``worker``.

    Returns the smallest (over ``repeats`` calls) of ``peak_rss_added_bytes`` and the worker's
    ``torch_allocated_bytes`` / ``device_peak_bytes`` / ``output_bytes``, and a reason when the
    resident peak could not be read.
    """
    best: dict[str, Any] = {}
    problem = None
    for _ in range(repeats):
        r = worker.call_metrics("prepare")
        if r.error:
            return {}, f"call_metrics failed: {r.error}"
        box: list[CallMetricsReply] = []

        def one(box: list[CallMetricsReply] = box) -> None:
            box.append(worker.call_metrics("call"))

        rss, problem = peak_rss_around(worker.proc.pid, one)
        got = box[0] if box else None
        if got is not None and got.error:
            return {}, f"call_metrics failed: {got.error}"
        figures: dict[str, Any] = {"peak_rss_added_bytes": rss}
        if got is not None:
            figures |= {"torch_allocated_bytes": got.torch_allocated_bytes,
                        "torch_allocations": got.torch_allocations, "output_bytes": got.output_bytes,
                        "device_peak_bytes": got.device_peak_bytes}  # fmt: skip
        for k, v in figures.items():
            old = best.get(k)
            best[k] = v if old is None or (v is not None and v < old) else old
    return best, problem


def _median(times: list[Any]) -> float:
    ordered = sorted(float(t) for t in times)
    return ordered[len(ordered) // 2]


def _work(reply: CaseReply, key: str) -> float | None:
    v = getattr(reply, key)
    return float(v) if v else None


def measure(
    worker: WorkerClient,
    *,
    device: str,
    head_ms: float,
    head_case: CaseReply,
    small: tuple[str, CaseReply] | None,
    cache: str,
    threads: int,
    flush_bytes: int,
    energy_budget_s: float = 0.5,
) -> CallMetrics:
    """All per-call metrics of the candidate in ``worker`` (set up on the headline variant).

    ``head_case``/``small``: the reference's ``make_case`` replies (work figures, inputs) for the
    headline and (label, reply) for the smallest variant, or None when the task has only one.
    Leaves the worker set up on the small variant.
    """
    methods, unavailable = [RSS_METHOD, ALLOC_METHOD], []
    mem, problem = call_memory(worker, device)
    if problem:
        unavailable.append(f"peak_rss_added_bytes: {problem}")
    if device == "cuda":
        methods.append(
            "device memory: torch.cuda.max_memory_allocated() above the allocation before the call"
        )
    else:
        unavailable.append("peak_device_bytes: no device (CPU run)")
    # one batch of back-to-back warm calls on the headline variant: the overhead fit's headline
    # point and, where a counter is readable, the energy per call
    energy = source = head_warm_ms = None
    reader, why = energy_reader(device)
    n = int(max(5, min(5000, energy_budget_s * 1e3 / max(head_ms, 1e-3))))
    a = reader.read_j() if reader is not None else None
    r = worker.time_batch(TimeBatch(n_calls=n, cache="warm"))
    b = reader.read_j() if reader is not None else None
    if r.error:
        unavailable.append(f"energy_j_per_call: the warm headline batch failed: {r.error}")
    else:
        head_warm_ms = _median(r.times_ms)
        if reader is None:
            unavailable.append(f"energy_j_per_call: {why}")
        else:
            energy, source = reader.joules(a, b) / n, why
            methods.append(
                f"energy: {why}, read around {n} back-to-back warm calls, divided by the call count "
                "(includes the package's idle and background power)"
            )
    # overhead: the smallest variant, warm like the headline batch above. Under cold-cache timing a
    # small call's median is dominated by thread hand-off after the flush (measured: swiglu at
    # tokens=1, 16.7 ms cold median vs 0.018 ms warm on a busy 2-core machine), not by the call.
    small_ms = overhead = ratio = None
    small_label = None
    if small is None:
        unavailable.append("small_overhead_ms: the task has a single variant")
    else:
        small_label, case = small
        key = next((k for k in ("bytes_moved", "flops") if _work(head_case, k) and _work(case, k)), None)
        hw = _work(head_case, key) if key else head_case.input_bytes
        sw = _work(case, key) if key else case.input_bytes
        setup = worker.setup_timing(
            SetupTiming(case.init_inputs, case.state_dict, [case.inputs], threads=threads, flush_bytes=0,
                        warmup_s=0.1)
        )  # fmt: skip
        if setup.error:
            unavailable.append(f"small_overhead_ms: setup on the small variant failed: {setup.error}")
        else:
            probe = worker.time_batch(TimeBatch(n_calls=5, cache="warm"))
            per = sorted(probe.times_ms or [1.0])[2] if not probe.error else 1.0
            n = int(max(5, min(2000, 0.3e3 / max(per, 1e-3))))
            r = worker.time_batch(TimeBatch(n_calls=n, cache="warm"))
            if r.error:
                unavailable.append(f"small_overhead_ms: timing the small variant failed: {r.error}")
            else:
                small_ms = _median(r.times_ms)
                if hw and sw and head_warm_ms:
                    overhead, ratio = overhead_fit(head_warm_ms, hw, small_ms, sw)
                    methods.append(
                        f"overhead: two-point fit time = overhead + work x cost over the headline "
                        f"({head_warm_ms:.4g} ms) and the smallest variant ({small_label}), work = "
                        f"{key or 'input bytes'}, warm cache, medians of back-to-back calls"
                    )
                if overhead is None:
                    unavailable.append(
                        "small_overhead_ms: the two variants' work does not separate the terms"
                    )
    return CallMetrics(
        peak_rss_added_bytes=mem.get("peak_rss_added_bytes"),
        peak_device_bytes=mem.get("device_peak_bytes"),
        torch_allocated_bytes=mem.get("torch_allocated_bytes"),
        output_bytes=mem.get("output_bytes"),
        small_variant=small_label,
        small_call_ms=small_ms,
        small_overhead_ms=overhead,
        overhead_vs_compute=ratio,
        energy_j_per_call=energy,
        energy_source=source,
        methods=tuple(methods),
        unavailable=tuple(unavailable),
    )


def describe(m: CallMetrics) -> list[str]:
    """Lines for the terminal: one per metric, with "unavailable: reason" where it is."""
    from kernelarena.sandbox.memory import describe_bytes

    why = {u.split(":", 1)[0]: u.split(":", 1)[1].strip() for u in m.unavailable}

    def b(v: int | None, key: str) -> str:
        return describe_bytes(v) if v is not None else f"unavailable ({why.get(key, 'not measured')})"

    lines = [
        f"peak memory added by a call  {b(m.peak_rss_added_bytes, 'peak_rss_added_bytes')} resident",
        f"torch bytes allocated/call   {b(m.torch_allocated_bytes, 'torch_allocated_bytes')}",
    ]
    if m.peak_device_bytes is not None:
        lines.append(f"peak device memory/call      {describe_bytes(m.peak_device_bytes)}")
    if m.small_overhead_ms is not None and m.small_call_ms is not None:
        lines.append(
            f"overhead at {m.small_variant}: {m.small_overhead_ms * 1e3:.1f} us of a {m.small_call_ms * 1e3:.1f} us "
            f"call ({m.overhead_vs_compute:.3g}x its compute)"
        )
    else:
        lines.append(
            f"overhead at smallest variant unavailable ({why.get('small_overhead_ms', 'not measured')})"
        )
    if m.energy_j_per_call is not None:
        lines.append(f"energy per call              {m.energy_j_per_call * 1e3:.3f} mJ ({m.energy_source})")
    else:
        lines.append(
            f"energy per call              unavailable ({why.get('energy_j_per_call', 'not measured')})"
        )
    return lines
