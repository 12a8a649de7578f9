"""Measure a CUDA GPU: HBM bandwidth curve (device copies timed with CUDA events) and GEMM peaks.

Only called when ``torch.cuda.is_available()``; nothing here touches CUDA at import.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import statistics
from collections.abc import Callable
from typing import Any

from kernelarena.hw.profile import HardwareProfile, cpu_model_name, stable_id

log = logging.getLogger(__name__)


def cuda_machine_id(device: int = 0) -> str:
    """Stable id of a GPU model: name, SM count, memory (whole GiB), L2 size."""
    import torch

    props = torch.cuda.get_device_properties(device)
    return stable_id(
        {
            "kind": "cuda",
            "name": props.name,
            "sms": props.multi_processor_count,
            "mem_gib": round(props.total_memory / (1 << 30)),
            "l2": int(getattr(props, "L2_cache_size", 0)),
        }
    )


def _event_samples(torch: Any, fn: Callable[[], object], budget_ms: float, sample_ms: float) -> list[float]:
    """Per-call milliseconds of several samples; each sample runs ``fn`` enough times to last ~sample_ms."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed(reps: int) -> float:
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    reps, t = 1, timed(1)
    while t < sample_ms and reps < (1 << 16):
        reps *= 2
        t = timed(reps)
    times = [t / reps]
    spent = t
    while len(times) < 3 or (spent < budget_ms and len(times) < 200):
        t = timed(reps)
        spent += t
        times.append(t / reps)
    return times


def measure_cuda(device: int = 0, *, quick: bool = False) -> HardwareProfile:
    """Measure GPU ``device``: copy/read/write bandwidth from 1 MiB to 2 GiB (256 MiB quick), GEMM peaks.

    Raises RuntimeError without CUDA. fp32 GEMM runs at precision "highest" (no TF32); the TF32 figure
    is measured too and counts towards ``peak_flops_fp32``, so a kernel on TF32 tensor cores is not
    flagged as implausible (its accuracy is the verifier's business).
    """
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available")
    dev = torch.device("cuda", device)
    props = torch.cuda.get_device_properties(device)
    l2 = int(getattr(props, "L2_cache_size", 0)) or None
    top = 28 if quick else 31
    cap = props.total_memory // 4
    sizes = [1 << k for k in range(20, top + 1, 2 if quick else 1) if (1 << k) <= cap]
    budget_ms, sample_ms = (20.0, 1.0) if quick else (100.0, 2.0)

    with torch.cuda.device(device):
        big = torch.empty(sizes[-1] // 4, dtype=torch.float32, device=dev)
        big.fill_(1.0)
        curve: list[tuple[int, float]] = []
        curve_med: list[tuple[int, float]] = []
        at_largest: dict[str, float] = {}
        for size in sizes:
            n = size // 4
            half = n // 2
            src, dst = big[:half], big[half : 2 * half]
            whole = big[:n]
            kernels: dict[str, tuple[Callable[[], object], int]] = {
                "copy": (functools.partial(dst.copy_, src), 8 * half),
                "read": (whole.sum, 4 * n),
                "write": (functools.partial(whole.fill_, 1.0), 4 * n),
            }
            best_bw, best_med = 0.0, 0.0
            for name, (fn, nbytes) in kernels.items():
                times = _event_samples(torch, fn, budget_ms, sample_ms)
                peak, med = nbytes / (min(times) * 1e-3), nbytes / (statistics.median(times) * 1e-3)
                if peak > best_bw:
                    best_bw, best_med = peak, med
                if size == sizes[-1]:
                    at_largest[name] = peak
            curve.append((size, best_bw))
            curve_med.append((size, best_med))
        del big

        def gemm(dtype: Any, n: int) -> float:
            gen = torch.Generator(device=dev).manual_seed(0)
            a = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
            b = torch.randn(n, n, device=dev, dtype=dtype, generator=gen)
            c = torch.empty(n, n, device=dev, dtype=dtype)
            times = _event_samples(torch, lambda: torch.mm(a, b, out=c), 10 * budget_ms, 5 * sample_ms)
            return 2.0 * n**3 / (min(times) * 1e-3)

        n = 4096 if quick else 8192
        old_precision = torch.get_float32_matmul_precision()
        try:
            torch.set_float32_matmul_precision("highest")  # true fp32
            fp32 = gemm(torch.float32, n)
            torch.set_float32_matmul_precision("high")  # TF32 tensor cores allowed
            tf32 = gemm(torch.float32, n)
        finally:
            torch.set_float32_matmul_precision(old_precision)
        fp16 = max(gemm(torch.float16, n), gemm(torch.bfloat16, n))
        torch.cuda.empty_cache()

    notes = []
    if l2 and sizes[-1] < 8 * l2:
        notes.append(f"largest working set {sizes[-1]} B < 8x L2: the HBM plateau may be L2-assisted")
    return HardwareProfile(
        machine_id=cuda_machine_id(device),
        kind="cuda",
        device_name=props.name,
        cpu_model=cpu_model_name(),
        cores=os.cpu_count() or 1,
        threads_used=0,
        l1d_bytes=None,
        l2_bytes=l2,
        llc_bytes=l2,
        mem_bw_bytes_per_s=curve[-1][1],
        bw_curve=tuple(curve),
        bw_curve_median=tuple(curve_med),
        kernel_bw=tuple(sorted(at_largest.items())),
        peak_flops_fp32=max(fp32, tf32),
        gemm_flops_fp32=fp32,
        fma_flops_fp32=None,
        measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        quick=quick,
        sm_count=props.multi_processor_count,
        gemm_flops_tf32=tf32,
        peak_flops_fp16=fp16,
        mem_total_bytes=int(props.total_memory),
    )
