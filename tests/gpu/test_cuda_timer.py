"""CudaTimer on a real GPU: per-call event timing, L2 flush, CUDA graphs. Skipped without CUDA.

Assertions are ratios and statistics, never absolute times.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from kernelarena.timing.cuda import CudaTimer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _sum_fn(n_floats: int, n_sets: int = 3):
    xs = [torch.randn(n_floats, device="cuda") for _ in range(n_sets)]
    return lambda i: xs[i % n_sets].sum()


def test_returns_one_positive_time_per_call() -> None:
    timer = CudaTimer()
    times = timer.time_calls(_sum_fn(1 << 20), 17, cache="cold")
    assert len(times) == 17 and all(t > 0 for t in times)
    assert timer.flush_bytes >= 2 * timer.l2_bytes > 0


def test_cold_cache_is_slower_than_warm_for_an_l2_resident_input() -> None:
    """A 16 MiB read fits the L2 of an H100/H200: warm calls hit L2, cold ones go to DRAM."""
    timer = CudaTimer()
    n = (16 << 20) // 4
    xs = [torch.randn(n, device="cuda")]  # one set: warm really re-reads the same bytes
    fn = lambda i: xs[0].sum()  # noqa: E731
    cold = statistics.median(timer.time_calls(fn, 60, cache="cold"))
    warm = statistics.median(timer.time_calls(fn, 60, cache="warm"))
    assert warm < cold, (warm, cold)


def test_time_scales_with_work() -> None:
    timer = CudaTimer()
    small = statistics.median(timer.time_calls(_sum_fn(1 << 24), 30, cache="cold"))
    big = statistics.median(timer.time_calls(_sum_fn(1 << 26), 30, cache="cold"))
    assert 2.0 < big / small < 8.0, (small, big)  # 4x the bytes of a bandwidth-bound kernel


def test_graph_mode_matches_eager_for_a_large_kernel_and_removes_launch_gaps() -> None:
    timer = CudaTimer()
    fn = _sum_fn(1 << 26)
    eager = statistics.median(timer.time_calls(fn, 20, cache="cold"))
    graph = statistics.median(timer.time_calls(fn, 20, cache="cold", use_graph=True))
    assert 0.7 < graph / eager < 1.3, (eager, graph)
    tiny = _sum_fn(256)
    tiny_eager = statistics.median(timer.time_calls(tiny, 50, cache="warm"))
    tiny_graph = statistics.median(timer.time_calls(tiny, 50, cache="warm", use_graph=True))
    assert tiny_graph <= tiny_eager * 1.2, (tiny_eager, tiny_graph)


def test_rejects_bad_arguments() -> None:
    timer = CudaTimer()
    with pytest.raises(ValueError):
        timer.time_calls(lambda i: None, 3, cache="lukewarm")
    with pytest.raises(ValueError):
        timer.time_calls(lambda i: None, 0)
