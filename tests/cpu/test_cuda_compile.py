"""CUDA C++ compile checks for sm_90 without a GPU: nvcc and NVRTC give resource reports, errors are data."""

from __future__ import annotations

import pytest

from kernelarena.backends import cuda

pytestmark = pytest.mark.cpu

# A reduction with static shared memory and a barrier: ptxas must report registers, smem and 1 barrier.
GOOD = r"""
extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ out, int n) {
    __shared__ float buf[256];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    buf[threadIdx.x] = i < n ? x[i] : 0.f;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}
"""

# Line 3 uses an undeclared identifier.
BROKEN = """extern "C" __global__ void broken(float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = undeclared_value * 2.0f;
}
"""

# A large per-thread array indexed at run time lives in local memory (stack frame > 0).
LOCAL_ARRAY = r"""
extern "C" __global__ void scratch(const float* x, const int* idx, float* y) {
    float t[512];
    for (int j = 0; j < 512; ++j) t[j] = x[j * 32 + threadIdx.x];
    y[threadIdx.x] = t[idx[threadIdx.x] & 511] + t[idx[threadIdx.x + 32] & 511];
}
"""

needs_nvcc = pytest.mark.skipif(cuda.find_nvcc() is None, reason="nvcc not installed")
needs_nvrtc = pytest.mark.skipif(not cuda.nvrtc_available(), reason="nvidia-cuda-nvrtc not installed")


def _check_good(rep: cuda.CompileReport) -> None:
    assert rep.ok, rep.error
    assert rep.arch == "sm_90"
    assert [f.name for f in rep.functions] == ["block_sum"]
    assert rep.n_regs > 0 and rep.n_spills == 0
    assert rep.shared_bytes == 256 * 4  # the static buffer
    assert rep.functions[0].barriers == 1
    assert rep.cubin_bytes > 0 and rep.ptx_bytes > 0


@needs_nvcc
def test_nvcc_compiles_for_sm90() -> None:
    rep = cuda.compile_cuda(GOOD, arch=90, method="nvcc")
    assert rep.compiler.startswith("nvcc")
    _check_good(rep)


@needs_nvrtc
def test_nvrtc_compiles_for_sm90() -> None:
    rep = cuda.compile_cuda(GOOD, arch=90, method="nvrtc")
    assert rep.compiler.startswith("nvrtc")
    _check_good(rep)


@needs_nvcc
@needs_nvrtc
def test_nvcc_and_nvrtc_agree_on_resources() -> None:
    a = cuda.compile_with_nvcc(GOOD, arch=90)
    b = cuda.compile_with_nvrtc(GOOD, arch=90)
    assert (a.n_regs, a.shared_bytes, a.n_spills) == (b.n_regs, b.shared_bytes, b.n_spills)


@pytest.mark.parametrize(
    "method", [pytest.param("nvcc", marks=needs_nvcc), pytest.param("nvrtc", marks=needs_nvrtc)]
)
def test_broken_source_reports_error_line(method: str) -> None:
    rep = cuda.compile_cuda(BROKEN, arch=90, method=method)
    assert not rep.ok
    assert "undeclared_value" in rep.error and "error" in rep.error
    assert "kernel.cu(3)" in rep.error  # file and line of the offending statement, no temp path
    assert "/tmp" not in rep.error
    assert rep.n_regs == 0 and rep.cubin_bytes == 0


@pytest.mark.parametrize(
    "method", [pytest.param("nvcc", marks=needs_nvcc), pytest.param("nvrtc", marks=needs_nvrtc)]
)
def test_local_memory_shows_in_stack(method: str) -> None:
    rep = cuda.compile_cuda(LOCAL_ARRAY, arch=90, method=method)
    assert rep.ok, rep.error
    assert rep.stack_bytes >= 512 * 4


def test_parse_ptxas_info_variants() -> None:
    """Lines as printed by nvcc -Xptxas -v, NVRTC's log and Triton's ptxas-blackwell."""
    text = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'
ptxas info    : Function properties for _Z3fooPf
    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 4096 bytes smem, 360 bytes cmem[0]
ptxas-blackwell info    : Compiling entry function 'tri_kernel' for 'sm_90a'
ptxas-blackwell info    : Function properties for tri_kernel
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas-blackwell info    : Used 40 registers, used 0 barriers
"""
    funcs = cuda.parse_ptxas_info(text)
    assert [f.name for f in funcs] == ["_Z3fooPf", "tri_kernel"]
    foo, tri = funcs
    assert (foo.n_regs, foo.spill_store_bytes, foo.spill_load_bytes, foo.stack_bytes) == (255, 12, 16, 8)
    assert (foo.shared_bytes, foo.barriers) == (4096, 1)
    assert (tri.n_regs, tri.shared_bytes, tri.spill_store_bytes) == (40, 0, 0)
    rep = cuda.report_from_ptxas(text, arch="sm_90", compiler="x", ptx_bytes=1, cubin_bytes=1)
    assert rep.n_regs == 255 and rep.n_spills == 28 and rep.shared_bytes == 4096


def test_missing_compiler_is_a_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda, "find_nvcc", lambda: None)
    rep = cuda.compile_with_nvcc(GOOD)
    assert not rep.ok and "nvcc not found" in rep.error
