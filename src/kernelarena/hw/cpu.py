"""Measure this CPU: STREAM-style bandwidth curve, FMA peak and GEMM peak.

Bandwidth kernels (read, copy, triad, and copy/triad with non-temporal stores) are C + OpenMP built
with :func:`kernelarena.backends.c.load_library`. Each thread works on its own static chunk and
repeats it ``reps`` times inside one parallel region, so small (in-cache) working sets are not
drowned by fork/join cost. All variants run at every size and the best wins: a reduction reaches
read bandwidth, a kernel with streaming stores beats a plain copy, and neither may be flagged.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernelarena import settings
from kernelarena.hw.profile import (
    Curve,
    HardwareProfile,
    cpu_machine_id,
    cpu_model_name,
    fmt_bytes,
    mem_available_bytes,
    mem_total_bytes,
    physical_cores,
    read_cache_sizes,
)

log = logging.getLogger(__name__)

C_SOURCE = r"""
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* Keeps the compiler from merging or dropping the repeated passes. */
#define CLOBBER() __asm__ __volatile__("" ::: "memory")

typedef float vf16u __attribute__((vector_size(64), aligned(4)));

/* Static chunk of n floats for this thread, a multiple of 16 floats so chunks stay 64-B aligned. */
static void chunk(long n, long *lo, long *hi) {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    long per = (n / nt) & ~15L;
    *lo = per * t;
    *hi = (t == nt - 1) ? n : *lo + per;
}

static float read_pass(const float *a, long lo, long hi) {
    vf16u s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    long i = lo;
    for (; i + 64 <= hi; i += 64) {
        s0 += *(const vf16u *)(a + i);
        s1 += *(const vf16u *)(a + i + 16);
        s2 += *(const vf16u *)(a + i + 32);
        s3 += *(const vf16u *)(a + i + 48);
    }
    vf16u s = s0 + s1 + s2 + s3;
    float r = 0.0f;
    for (int k = 0; k < 16; k++) r += s[k];
    for (; i < hi; i++) r += a[i];
    return r;
}

static void copy_pass(float *restrict b, const float *restrict a, long lo, long hi) {
    for (long i = lo; i < hi; i++) b[i] = a[i];
}

static void triad_pass(float *restrict a, const float *restrict b, const float *restrict c, float s,
                       long lo, long hi) {
    for (long i = lo; i < hi; i++) a[i] = b[i] + s * c[i];
}

/* Streaming (non-temporal) stores: what a kernel that writes large outputs well achieves. */
static void copy_nt_pass(float *restrict b, const float *restrict a, long lo, long hi) {
    long i = lo;
#if defined(__AVX512F__)
    for (; i < hi && ((uintptr_t)(b + i) & 63); i++) b[i] = a[i];
    for (; i + 16 <= hi; i += 16) _mm512_stream_ps(b + i, _mm512_loadu_ps(a + i));
    _mm_sfence();
#elif defined(__AVX__)
    for (; i < hi && ((uintptr_t)(b + i) & 31); i++) b[i] = a[i];
    for (; i + 8 <= hi; i += 8) _mm256_stream_ps(b + i, _mm256_loadu_ps(a + i));
    _mm_sfence();
#endif
    for (; i < hi; i++) b[i] = a[i];
}

static void triad_nt_pass(float *restrict a, const float *restrict b, const float *restrict c, float s,
                          long lo, long hi) {
    long i = lo;
#if defined(__AVX512F__)
    __m512 vs = _mm512_set1_ps(s);
    for (; i < hi && ((uintptr_t)(a + i) & 63); i++) a[i] = b[i] + s * c[i];
    for (; i + 16 <= hi; i += 16)
        _mm512_stream_ps(a + i, _mm512_fmadd_ps(vs, _mm512_loadu_ps(c + i), _mm512_loadu_ps(b + i)));
    _mm_sfence();
#elif defined(__AVX__) && defined(__FMA__)
    __m256 vs = _mm256_set1_ps(s);
    for (; i < hi && ((uintptr_t)(a + i) & 31); i++) a[i] = b[i] + s * c[i];
    for (; i + 8 <= hi; i += 8)
        _mm256_stream_ps(a + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
    _mm_sfence();
#endif
    for (; i < hi; i++) a[i] = b[i] + s * c[i];
}

/* kernel: 0 read, 1 copy, 2 triad, 3 copy_nt, 4 triad_nt. Returns seconds for `reps` passes. */
double ka_stream(int kernel, float *a, float *b, float *c, long n, long reps, int nthreads) {
    volatile float sink = 0.0f;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(nthreads)
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        float acc = 0.0f;
        for (long r = 0; r < reps; r++) {
            switch (kernel) {
            case 0: acc += read_pass(a, lo, hi); break;
            case 1: copy_pass(b, a, lo, hi); break;
            case 2: triad_pass(a, b, c, 3.0f, lo, hi); break;
            case 3: copy_nt_pass(b, a, lo, hi); break;
            default: triad_nt_pass(a, b, c, 3.0f, lo, hi); break;
            }
            CLOBBER();
        }
        if (acc == 1.2345f) sink = acc;
    }
    (void)sink;
    return omp_get_wtime() - t0;
}

/* The read kernel's sum over all threads: lets a test check that the chunks cover every element. */
double ka_read_sum(const float *a, long n, int nthreads) {
    double total = 0.0;
#pragma omp parallel num_threads(nthreads) reduction(+ : total)
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        total += read_pass(a, lo, hi);
    }
    return total;
}

/* First touch with the same static partition the kernels use. */
void ka_init(float *a, long n, float value, int nthreads) {
#pragma omp parallel num_threads(nthreads)
    {
        long lo, hi;
        chunk(n, &lo, &hi);
        for (long i = lo; i < hi; i++) a[i] = value;
    }
}

/* Independent FMA chains on vector registers: the core's arithmetic peak without memory. */
#define FMA_KERNEL(NAME, BYTES, NACC)                                                     \
    typedef float NAME##_v __attribute__((vector_size(BYTES)));                           \
    double NAME(long iters, int nthreads, float *out) {                                    \
        double t0 = omp_get_wtime();                                                       \
        _Pragma("omp parallel num_threads(nthreads)") {                                    \
            NAME##_v acc[NACC];                                                            \
            NAME##_v m = (NAME##_v){0} + 0.999f, add = (NAME##_v){0} + 0.001f;             \
            for (int j = 0; j < NACC; j++) acc[j] = (NAME##_v){0} + 0.01f * (float)(j + 1); \
            for (long it = 0; it < iters; it++) {                                          \
                _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++) acc[j] = acc[j] * m + add; \
            }                                                                              \
            float s = 0.0f;                                                                \
            for (int j = 0; j < NACC; j++)                                                 \
                for (int k = 0; k < (int)(BYTES / 4); k++) s += acc[j][k];                 \
            out[omp_get_thread_num()] = s;                                                 \
        }                                                                                  \
        return omp_get_wtime() - t0;                                                       \
    }

FMA_KERNEL(ka_fma_w8, 32, 12)
FMA_KERNEL(ka_fma_w16, 64, 12)
"""

#: name -> (kernel code in ka_stream, arrays touched per pass); bytes per pass = 4 * arrays * n
KERNELS: dict[str, tuple[int, int]] = {
    "read": (0, 1),
    "copy": (1, 2),
    "triad": (2, 3),
    "copy_nt": (3, 2),
    "triad_nt": (4, 3),
}
NT_MIN_BYTES = 1 << 20
FMA_VARIANTS: dict[str, int] = {"ka_fma_w8": 8, "ka_fma_w16": 16}
FMA_ACCUMULATORS = 12


@dataclass(frozen=True)
class _Plan:
    """How long and how far to measure; quick is for tests (< ~5 s), full for real use (< ~30 s)."""

    sizes: tuple[int, ...]
    budget_s: float  # per (size, kernel, thread count)
    sample_s: float  # target duration of one timed sample
    min_samples: int
    gemm_n: int
    gemm_budget_s: float
    fma_budget_s: float


def plan(quick: bool, max_bytes: int) -> _Plan:
    top = 27 if quick else 30  # 128 MiB quick, 1 GiB full
    step = 2 if quick else 1
    sizes = [1 << k for k in range(15, top + 1, step)]
    sizes = [s for s in sizes if s <= max_bytes] or [sizes[0]]
    if quick:
        return _Plan(tuple(sizes), 0.01, 0.001, 3, 1024, 0.3, 0.05)
    return _Plan(tuple(sizes), 0.05, 0.001, 3, 2048, 1.5, 0.3)


def _largest_size_cap() -> int:
    """1 GiB, or less when memory is short: the curve's top must not push the machine into swap."""
    avail = mem_available_bytes()
    cap = 1 << 30
    while cap > (1 << 24) and cap > avail // 4:
        cap //= 2
    return cap


def _load() -> Any:
    from kernelarena.backends.c import load_library

    functions: dict[str, tuple[str | None, list[str]]] = {
        "ka_stream": ("double", ["int", "ptr", "ptr", "ptr", "long", "long", "int"]),
        "ka_init": (None, ["ptr", "long", "float", "int"]),
        "ka_read_sum": ("double", ["ptr", "long", "int"]),
    }
    for name in FMA_VARIANTS:
        functions[name] = ("double", ["long", "int", "ptr"])
    return load_library(C_SOURCE, functions=functions)


def _samples(run: Callable[[int], float], budget_s: float, sample_s: float, min_samples: int) -> list[float]:
    """Per-rep seconds of samples lasting ~sample_s each, taken until the budget is spent.

    ``run(reps)`` returns seconds. Short samples, many of them: on a shared machine the best one
    catches a moment when no other process holds our cores. Calibration uses the faster of two
    runs so that one preempted run does not leave every sample at one repetition; passes that are
    long twice over (large working sets) need no calibration and count as samples.
    """
    first, second = run(1), run(1)  # the first also warms caches and the thread pool
    t = min(first, second)
    times = []
    reps = 1
    if t >= 10 * sample_s:
        times += [first, second]  # a long pass twice: no calibration needed, both are samples
    else:
        while t < sample_s and reps < (1 << 30):
            reps = max(reps * 2, math.ceil(reps * sample_s / max(t, 1e-7)))
            t = min(run(reps), run(reps))
        times.append(t / reps)
    start = time.perf_counter()
    while len(times) < min_samples or time.perf_counter() - start < budget_s:
        times.append(run(reps) / reps)
        if len(times) >= 2000:
            break
    return times


def _thread_counts(threads: int) -> tuple[int, ...]:
    # One thread too: a lone thread is not held up at a barrier by a core that another process has
    # taken, so on a busy machine its figures survive where the all-threads ones do not.
    return (threads, 1) if threads > 1 else (1,)


@dataclass(frozen=True)
class _Bandwidth:
    curve: Curve  # best over kernels, `threads` threads
    curve_median: Curve  # median of that best kernel
    curve_1t: Curve  # best over kernels, one thread
    at_largest: dict[str, float]  # kernel -> best over thread counts at the largest size


def _bandwidth(lib: Any, threads: int, p: _Plan) -> _Bandwidth:
    import numpy as np

    largest = p.sizes[-1]
    pad = 320  # floats between arrays: avoids 4 KiB aliasing of equal-offset streams
    buf = np.empty(largest // 4 + 3 * pad + 64, dtype=np.float32)
    base_addr = buf.ctypes.data
    shift = (-base_addr % 64) // 4
    base = base_addr + shift * 4
    lib.ka_init(base, buf.size - shift, 1.0, threads)

    curve: list[tuple[int, float]] = []
    curve_med: list[tuple[int, float]] = []
    curve_1t: list[tuple[int, float]] = []
    at_largest: dict[str, float] = {}
    for size in p.sizes:
        best: dict[int, tuple[float, float, str]] = {}  # thread count -> (peak, median, kernel)
        for name, (code, arrays) in KERNELS.items():
            if name.endswith("_nt") and size < NT_MIN_BYTES:
                continue  # streaming stores bypass the cache: they cannot win on an in-cache set
            n = (size // (4 * arrays)) & ~15
            stride = n + pad
            ptrs = [base + 4 * stride * j for j in range(3)]
            nbytes = 4 * arrays * n
            for nt in _thread_counts(threads):

                def run(
                    reps: int, code: int = code, n: int = n, ptrs: list[int] = ptrs, nt: int = nt
                ) -> float:
                    return float(lib.ka_stream(code, ptrs[0], ptrs[1], ptrs[2], n, reps, nt))

                times = _samples(run, p.budget_s, p.sample_s, p.min_samples)
                peak, med = nbytes / min(times), nbytes / statistics.median(times)
                if peak > best.get(nt, (0.0,))[0]:
                    best[nt] = (peak, med, name)
                if size == largest:
                    at_largest[name] = max(peak, at_largest.get(name, 0.0))
        log.debug(
            "bandwidth %s: %s",
            fmt_bytes(size),
            ", ".join(f"{nt}t {b[0] / 1e9:.1f} GB/s ({b[2]})" for nt, b in best.items()),
        )
        curve.append((size, best[threads][0]))
        curve_med.append((size, best[threads][1]))
        curve_1t.append((size, best[1][0]))
    del buf
    return _Bandwidth(tuple(curve), tuple(curve_med), tuple(curve_1t), at_largest)


def attainable_curve(curve: Curve, curve_1t: Curve, scale: int, cache_bytes: int) -> Curve:
    """Upper-bound curve for ``scale`` cores from the all-threads and the one-thread measurements.

    At each size: the best of both runs, and, while the working set fits in cache, ``scale`` x the
    one-thread figure at size / scale (stepped, see :func:`~kernelarena.hw.roofline.step_curve`). Caches are per core (L1, L2) or scale with cores (L3 slices),
    so cores working on their own parts of an in-cache set add up; DRAM does not, so beyond
    ``cache_bytes`` only measured figures count. This keeps the bound honest when other processes
    held our cores during the all-threads run (common on shared machines).
    """
    from kernelarena.hw.roofline import step_curve

    one = dict(curve_1t)
    out = []
    for size, bw in curve:
        bound = max(bw, one.get(size, 0.0))
        if scale > 1 and size <= cache_bytes and curve_1t:
            bound = max(bound, scale * step_curve(curve_1t, size / scale))
        out.append((size, bound))
    return tuple(out)


def _fma_flops(lib: Any, threads: int, p: _Plan) -> dict[int, float]:
    """Best FMA FLOP/s per thread count."""
    out = (ctypes.c_float * max(threads, 1))()
    best: dict[int, float] = {}
    for nt in _thread_counts(threads):
        for name, width in FMA_VARIANTS.items():
            fn = getattr(lib, name)
            flops_per_iter = 2.0 * width * FMA_ACCUMULATORS * nt

            def run(iters: int, fn: Any = fn, nt: int = nt) -> float:
                return float(fn(iters, nt, out))

            times = _samples(run, p.fma_budget_s, 0.002, p.min_samples)
            best[nt] = max(best.get(nt, 0.0), flops_per_iter / min(times))
    return best


def _gemm_flops(threads: int, p: _Plan) -> float:
    """torch.mm fp32 at gemm_n^3 with ``threads`` threads (and a smaller one-thread fallback)."""
    import torch

    old = torch.get_num_threads()
    gen = torch.Generator().manual_seed(0)
    best = 0.0
    try:
        for nt in _thread_counts(threads):
            torch.set_num_threads(nt)
            # The one-thread run is a fallback for a busy machine: half the size, a third of the time.
            n = p.gemm_n if nt == threads else p.gemm_n // 2
            budget = p.gemm_budget_s if nt == threads else p.gemm_budget_s / 3
            a = torch.randn(n, n, generator=gen)
            b = torch.randn(n, n, generator=gen)
            c = torch.empty(n, n)

            def run(reps: int, a: Any = a, b: Any = b, c: Any = c) -> float:
                t0 = time.perf_counter()
                for _ in range(reps):
                    torch.mm(a, b, out=c)
                return time.perf_counter() - t0

            times = _samples(run, budget, 0.0, 2)
            best = max(best, 2.0 * n**3 / min(times))
    finally:
        torch.set_num_threads(old)
    return best


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def measure_cpu(threads: int | None = None, quick: bool = False) -> HardwareProfile:
    """Measure this CPU with ``threads`` threads (default: ``settings.num_threads()``).

    ``quick`` stops the bandwidth curve at 128 MiB and uses short budgets (a few seconds, for tests);
    the full run goes to 1 GiB (less when memory is short) in 15-30 s.

    Every kernel also runs with one thread. ``bw_curve`` is :func:`attainable_curve` of the two;
    ``fma_flops_fp32`` is the best of the all-threads FMA run and cores x the one-thread run (FMA
    units are per core); ``mem_bw_bytes_per_s`` is measured only. ``bw_curve_median`` and
    ``bw_curve_1t`` keep the raw measurements.
    """
    threads = threads or settings.num_threads()
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    t_start = time.perf_counter()
    load_before = _load_average()
    lib = _load()
    p = plan(quick, _largest_size_cap())
    caches = read_cache_sizes()
    scale = min(threads, physical_cores())
    notes: list[str] = []

    bw = _bandwidth(lib, threads, p)
    t_bw = time.perf_counter()
    fma_by_threads = _fma_flops(lib, threads, p)
    t_fma = time.perf_counter()
    gemm = _gemm_flops(threads, p)  # last: torch's own OpenMP pool must not spin during ours
    t_gemm = time.perf_counter()

    llc = caches.get("llc")
    cache_bytes = llc or scale * caches.get("l2", 1 << 20)
    curve = attainable_curve(bw.curve, bw.curve_1t, scale, cache_bytes)
    fma = max(fma_by_threads[threads], scale * fma_by_threads[1])
    largest = curve[-1][0]
    if llc and largest < 4 * llc:
        notes.append(
            f"largest working set {fmt_bytes(largest)} < 4x LLC ({fmt_bytes(llc)}): "
            "the memory-bandwidth plateau may still be cache-assisted"
        )
    cpus = os.cpu_count() or 1
    if load_before >= 0.5 * cpus:
        notes.append(
            f"machine busy when measured (load average {load_before:.1f} on {cpus} CPUs): peaks may be "
            "underestimated; re-measure when idle"
        )
    if threads > cpus:
        notes.append(f"{threads} threads on {cpus} logical CPUs: oversubscribed")
    log.info(
        "measured cpu in %.1f s (bandwidth %.1f s, fma %.1f s, gemm %.1f s)",
        t_gemm - t_start,
        t_bw - t_start,
        t_fma - t_bw,
        t_gemm - t_fma,
    )
    return HardwareProfile(
        machine_id=cpu_machine_id(),
        kind="cpu",
        device_name=cpu_model_name(),
        cpu_model=cpu_model_name(),
        cores=cpus,
        threads_used=threads,
        l1d_bytes=caches.get("l1d"),
        l2_bytes=caches.get("l2"),
        llc_bytes=llc,
        mem_bw_bytes_per_s=max(bw.curve[-1][1], bw.curve_1t[-1][1]),
        bw_curve=curve,
        bw_curve_median=bw.curve_median,
        kernel_bw=tuple(sorted(bw.at_largest.items())),
        peak_flops_fp32=max(gemm, fma),
        gemm_flops_fp32=gemm,
        fma_flops_fp32=fma,
        measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        quick=quick,
        mem_total_bytes=mem_total_bytes(),
        bw_curve_1t=bw.curve_1t,
        notes=tuple(notes),
    )
