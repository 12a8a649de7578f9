"""The CUDA runtime path on a real GPU: a load_inline build, cached by content. Skipped without CUDA.

The first build is slow (~35 s: nvcc plus the torch headers); the test checks that a second load of
the same source is served from the cache and that the kernel computes the right thing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kernelarena.backends.cuda import compile_cuda, load_inline_cached

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA_SRC = r"""
#include <torch/extension.h>
__global__ void axpy_kernel(const float* x, float* y, float a, long n) {
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}
void axpy(torch::Tensor x, torch::Tensor y, double a) {
    long n = x.numel();
    axpy_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), (float)a, n);
}
"""
CPP_SRC = "void axpy(torch::Tensor x, torch::Tensor y, double a);"


def test_load_inline_cached_builds_runs_and_reuses() -> None:
    mod = load_inline_cached("karena_axpy", cpp_sources=CPP_SRC, cuda_sources=CUDA_SRC, functions=["axpy"])
    x = torch.randn(1000, device="cuda")
    y = torch.randn(1000, device="cuda")
    want = 2.5 * x + y
    mod.axpy(x, y, 2.5)
    torch.cuda.synchronize()
    torch.testing.assert_close(y, want)
    built = Path(mod.__file__)
    mtime = built.stat().st_mtime_ns
    again = load_inline_cached("karena_axpy", cpp_sources=CPP_SRC, cuda_sources=CUDA_SRC, functions=["axpy"])
    assert built.stat().st_mtime_ns == mtime  # served from the build cache, not rebuilt
    assert hasattr(again, "axpy")


def test_compile_report_for_this_gpu() -> None:
    major, minor = torch.cuda.get_device_capability()
    rep = compile_cuda(
        'extern "C" __global__ void k(float* y) { y[threadIdx.x] = 1.f; }', arch=f"{major}{minor}"
    )
    assert rep.ok, rep.error
    assert rep.n_regs > 0
