"""Roofline bounds from a :class:`~kernelarena.hw.profile.HardwareProfile`.

The verifier flags a kernel whose time beats the roofline (``percent_of_roofline > 100``). Honest
fast kernels must not be flagged, so every bound here is generous: PEAK (best-sample) figures, and
for a working set that fits in cache the cache bandwidth of the next smaller measured size, never
less than DRAM's.

Example::

    ms = roofline_ms(profile, flops=2 * n**3, bytes_moved=3 * 4 * n * n)
    pct = percent_of_roofline(profile, 2 * n**3, 12 * n * n, measured_ms, working_set_bytes=12 * n * n)
"""

from __future__ import annotations

import math

from kernelarena.hw.profile import Curve, HardwareProfile

_HALF = ("float16", "bfloat16", "half", "fp16", "bf16")


def bw_envelope(curve: Curve) -> Curve:
    """Non-increasing upper envelope: a working set can always go at least as fast as a larger one.

    Measured curves dip at small sizes (thread start-up) and wobble with noise; taking the max over
    all sizes >= s keeps the bound an upper bound.
    """
    out: list[tuple[int, float]] = []
    best = 0.0
    for size, bw in sorted(curve, reverse=True):
        best = max(best, bw)
        out.append((size, best))
    return tuple(reversed(out))


def step_curve(curve: Curve, size: float) -> float:
    """The figure at the largest measured size <= ``size`` (the first one below the curve); 0 if empty.

    On a non-increasing curve this is an upper bound for any size in between. Interpolating would
    not be: a knee is sharp (a set that still fits two private L2s runs at L2 speed up to the edge),
    and a torch.add on 3 MiB here ran at 131% of a log-log interpolated bound.
    """
    if not curve:
        return 0.0
    value = curve[0][1]
    for s, bw in curve:
        if s > size:
            break
        value = bw
    return value


def attainable_bw(profile: HardwareProfile, working_set_bytes: float) -> float:
    """Bytes/s a kernel touching ``working_set_bytes`` can reach, as an upper bound for the verifier.

    The non-increasing envelope of the curve, stepped (:func:`step_curve`): the figure measured at
    the largest size not above the working set; below the smallest size, the fastest (cache)
    figure. Never below the memory bandwidth.
    """
    return max(step_curve(bw_envelope(profile.bw_curve), working_set_bytes), profile.mem_bw_bytes_per_s)


def working_set_for_cache(cache: str, working_set_bytes: float | None) -> float | None:
    """The working set the roofline should judge by, given the timer's cache state.

    Under ``cold`` timing every call starts from a flushed cache, so the data comes from memory and
    the bound is DRAM bandwidth (``None`` here makes :func:`roofline_ms` use it). Under ``warm``
    timing the cache level holding the working set serves it. Judging a cold-cache time against
    cache bandwidth printed 9% for an rmsnorm that ran at 58% of memory bandwidth (issue 14).
    """
    if cache == "cold":
        return None
    if cache == "warm":
        return working_set_bytes
    raise ValueError(f"unknown cache state {cache!r} (cold or warm)")


def peak_flops(profile: HardwareProfile, dtype: str = "float32") -> float:
    """Peak FLOP/s for ``dtype``; half types use the fp16 figure where measured, else fp32's."""
    name = dtype.removeprefix("torch.")
    if name in _HALF and profile.peak_flops_fp16:
        return max(profile.peak_flops_fp16, profile.peak_flops_fp32)
    return profile.peak_flops_fp32


def roofline_ms(
    profile: HardwareProfile,
    flops: float,
    bytes_moved: float,
    *,
    working_set_bytes: float | None = None,
    dtype: str = "float32",
) -> float:
    """Least time (ms) the machine needs: max(flops / peak FLOP/s, bytes_moved / bandwidth).

    Bandwidth is the memory (DRAM) figure unless ``working_set_bytes`` is given, then the cache-aware
    :func:`attainable_bw` for that working set (use it when inputs are warm in cache).
    """
    if flops < 0 or bytes_moved < 0:
        raise ValueError(f"flops and bytes_moved must be >= 0, got {flops}, {bytes_moved}")
    peak = peak_flops(profile, dtype)
    bw = (
        profile.mem_bw_bytes_per_s if working_set_bytes is None else attainable_bw(profile, working_set_bytes)
    )
    if peak <= 0 or bw <= 0:
        raise ValueError("profile has no positive peak FLOP/s or bandwidth")
    return max(flops / peak, bytes_moved / bw) * 1e3


def percent_of_roofline(
    profile: HardwareProfile,
    flops: float,
    bytes_moved: float,
    measured_ms: float,
    *,
    working_set_bytes: float | None = None,
    dtype: str = "float32",
) -> float:
    """100 x roofline time / measured time: 100 = at the roofline, > 100 physically implausible.

    A measured time of zero is infinitely implausible (returns ``inf``) unless the work is zero.
    """
    if measured_ms < 0:
        raise ValueError(f"measured_ms must be >= 0, got {measured_ms}")
    bound = roofline_ms(profile, flops, bytes_moved, working_set_bytes=working_set_bytes, dtype=dtype)
    if measured_ms == 0:
        return 0.0 if bound == 0 else math.inf
    return 100.0 * bound / measured_ms
