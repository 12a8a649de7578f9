"""Real measurement of this machine (quick mode) and a roofline sanity check against an honest kernel.

No absolute times are asserted: only sane ranges of the measured figures, and that an honest numpy
kernel does not come out as "faster than the machine" (which would make the verifier cry wolf).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from kernelarena.hw import HardwareProfile, describe, load_or_measure, measure_cpu, percent_of_roofline
from kernelarena.hw.cpu import KERNELS, _load

pytestmark = pytest.mark.cpu

GB = 1e9


@pytest.fixture(scope="module")
def quick_profile() -> HardwareProfile:
    return measure_cpu(quick=True)


def test_quick_profile_is_sane(quick_profile: HardwareProfile) -> None:
    p = quick_profile
    assert p.kind == "cpu" and p.quick and p.threads_used >= 1 and p.cores >= 1
    assert 1 * GB < p.mem_bw_bytes_per_s < 10_000 * GB
    assert p.peak_flops_fp32 > 1 * GB
    assert p.gemm_flops_fp32 > 1 * GB and p.fma_flops_fp32 is not None and p.fma_flops_fp32 > 1 * GB
    assert p.peak_flops_fp32 == max(p.gemm_flops_fp32, p.fma_flops_fp32)
    sizes = [s for s, _ in p.bw_curve]
    assert sizes == sorted(set(sizes)) and sizes[0] == 32 << 10 and len(sizes) >= 4
    assert [s for s, _ in p.bw_curve_median] == sizes
    for (_, peak), (_, med) in zip(p.bw_curve, p.bw_curve_median):
        assert 1 * GB < peak < 100_000 * GB and 0 < med <= peak
    assert [s for s, _ in p.bw_curve_1t] == sizes
    for (_, bound), (_, one) in zip(p.bw_curve, p.bw_curve_1t):
        assert bound >= one  # the bound includes the one-thread measurement
    assert p.mem_bw_bytes_per_s <= p.bw_curve[-1][1]
    assert {k for k, _ in p.kernel_bw} == set(KERNELS)
    assert max(b for _, b in p.kernel_bw) == p.mem_bw_bytes_per_s
    # Caches are real: the smallest working set must beat the largest (it is 4096x smaller).
    assert p.bw_curve[0][1] > p.bw_curve[-1][1]
    assert HardwareProfile.from_json(p.to_json()) == p
    assert "GFLOP/s" in describe(p)


def test_honest_numpy_kernel_is_not_flagged(quick_profile: HardwareProfile) -> None:
    """np.add on a 12 MiB working set, best of many, must not beat the cache-aware roofline."""
    n = 1 << 20
    a, b, c = (np.random.default_rng(i).standard_normal(n, dtype=np.float32) for i in range(3))
    best_s = float("inf")
    for _ in range(50):
        t0 = time.perf_counter()
        np.add(a, b, out=c)
        best_s = min(best_s, time.perf_counter() - t0)
    nbytes = 3 * 4 * n
    pct = percent_of_roofline(quick_profile, n, nbytes, best_s * 1e3, working_set_bytes=nbytes)
    # Generous margin: the profile is measured on a shared machine; a 2x overshoot means a units bug.
    assert 0 < pct < 150, pct


def test_load_or_measure_stores_a_real_profile(tmp_path: Path, quick_profile: HardwareProfile) -> None:
    db = tmp_path / "karena.db"
    stored = load_or_measure(
        db, quick=True, threads=quick_profile.threads_used, measure=lambda t, q: quick_profile
    )
    assert load_or_measure(db, quick=True, threads=quick_profile.threads_used) == stored == quick_profile


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 37, 1000, 4099])
def test_stream_kernels_touch_every_element(n: int, threads: int) -> None:
    """A kernel that skipped elements would overstate bandwidth and loosen every roofline bound."""
    lib = _load()
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n, dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    c = rng.standard_normal(n, dtype=np.float32)
    assert lib.ka_read_sum(a.ctypes.data, n, threads) == pytest.approx(
        float(a.sum(dtype=np.float64)), rel=1e-4
    )
    for name in ("triad", "triad_nt"):
        out = np.zeros(n, dtype=np.float32)
        lib.ka_stream(KERNELS[name][0], out.ctypes.data, b.ctypes.data, c.ctypes.data, n, 1, threads)
        np.testing.assert_allclose(out, b + np.float32(3.0) * c, rtol=1e-6, atol=1e-6)
    for name in ("copy", "copy_nt"):
        out = np.zeros(n, dtype=np.float32)
        lib.ka_stream(KERNELS[name][0], a.ctypes.data, out.ctypes.data, c.ctypes.data, n, 2, threads)
        np.testing.assert_array_equal(out, a)


@pytest.mark.gpu
def test_cuda_profile_is_sane() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from kernelarena.hw import measure_cuda

    p = measure_cuda(quick=True)
    assert p.kind == "cuda" and p.sm_count and p.sm_count > 0
    assert p.l2_bytes and p.l2_bytes > 0
    assert 50 * GB < p.mem_bw_bytes_per_s < 50_000 * GB
    assert p.gemm_flops_fp32 > 100 * GB and p.peak_flops_fp16 and p.peak_flops_fp16 > p.gemm_flops_fp32
    sizes = [s for s, _ in p.bw_curve]
    assert sizes == sorted(set(sizes))
    assert HardwareProfile.from_json(p.to_json()) == p
