"""``karena/block.h`` (the attention tiles' 4-row GEMM block and exp2) on every SIMD path this machine
can run: products against float64 for every column-block split the ISA takes, the alpha-scaled
accumulate form, and exp2 against libm."""

from __future__ import annotations

import pytest
import torch

from kernelarena.backends import gemm_build

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(120)]

_SRC = r"""
#include "karena/block.h"
const char* isa(void) { return KV_ISA; }
int nv(void) { return KB_NV; }

/* rows r of a (stride lda) and c (stride ldc): c = (use_alpha ? alpha c : 0) + a @ b */
void gemm4(const float* a, long lda, const float* b, long ldb, long K, float* c, long ldc, long n,
           const float* alpha, int use_alpha) {
  const float* ar[4] = {a, a + lda, a + 2 * lda, a + 3 * lda};
  float* cr[4] = {c, c + ldc, c + 2 * ldc, c + 3 * ldc};
  kb_gemm4(ar, b, ldb, K, cr, n, use_alpha ? alpha : NULL);
}

void gemm(const float* A, long lda, const float* B, long ldb, float* C, long ldc, long M, long N, long K,
          int acc) {
  kb_gemm(A, lda, B, ldb, C, ldc, M, N, K, acc);
}

void exp2v(const float* x, float* y, long n) {
  for (long i = 0; i < n; i += KV_VW) kv_store(y + i, kb_exp2(kv_load(x + i)));
}
"""

_FNS = {
    "isa": ("ptr", []),
    "nv": ("int", []),
    "gemm4": (None, ["ptr", "long", "ptr", "long", "long", "ptr", "long", "long", "ptr", "int"]),
    "gemm": (None, ["ptr", "long", "ptr", "long", "ptr", "long", "long", "long", "long", "int"]),
    "exp2v": (None, ["ptr", "ptr", "long"]),
}


@pytest.fixture(scope="module", params=gemm_build.runnable_paths())
def lib(request, build_on_path):
    loaded = build_on_path(_SRC, _FNS, request.param)
    assert loaded.nv() == (4 if request.param == "avx512" else 2)  # 16 accumulators where 32 registers
    return loaded


# n: one vector, half and whole AVX-512 blocks, 64 + a half block, 64 + one vector, two blocks;
# K = 0 leaves alpha c (or zeros); strides wider than n so a block that writes past n is caught
@pytest.mark.parametrize("n", [16, 32, 48, 64, 80, 96, 128])
@pytest.mark.parametrize("k", [0, 1, 37, 128])
@pytest.mark.parametrize("use_alpha", [False, True])
def test_gemm4_matches_float64(lib, n, k, use_alpha):
    g = torch.Generator().manual_seed(n * 1000 + k * 2 + use_alpha)
    lda, ldb, ldc = k + 3, n + 16, n + 16
    a = torch.randn(4, lda, generator=g)
    b = torch.randn(max(k, 1), ldb, generator=g)
    c0 = torch.randn(4, ldc, generator=g)
    alpha = torch.tensor([0.5, 0.0, 1.0, 2.0])
    out = c0.clone()
    lib.gemm4(
        a.data_ptr(), lda, b.data_ptr(), ldb, k, out.data_ptr(), ldc, n, alpha.data_ptr(), int(use_alpha)
    )
    ref = a[:, :k].double() @ b[:k, :n].double()
    if use_alpha:
        ref = ref + alpha.double()[:, None] * c0[:, :n].double()
    torch.testing.assert_close(out[:, :n], ref.float(), atol=1e-5 * max(1.0, k**0.5), rtol=1e-5)
    assert torch.equal(out[:, n:], c0[:, n:])  # nothing written past n columns


@pytest.mark.parametrize("acc", [0, 1])
def test_strided_gemm_matches_float64(lib, acc):
    g = torch.Generator().manual_seed(11 + acc)
    m, n, k = 12, 80, 70
    a, b = torch.randn(m, k + 5, generator=g), torch.randn(k, n + 3, generator=g)
    c0 = torch.randn(m, n + 7, generator=g)
    out = c0.clone()
    lib.gemm(a.data_ptr(), k + 5, b.data_ptr(), n + 3, out.data_ptr(), n + 7, m, n, k, acc)
    ref = a[:, :k].double() @ b[:, :n].double() + (c0[:, :n].double() if acc else 0)
    torch.testing.assert_close(out[:, :n], ref.float(), atol=1e-4, rtol=1e-5)
    assert torch.equal(out[:, n:], c0[:, n:])


def test_exp2_against_libm(lib):
    x = torch.cat(
        [torch.linspace(-126.0, 0.0, 200_000), torch.tensor([-1e30, -300.0, -126.5, -0.0, 0.0, 3.0])]
    )
    x = torch.nn.functional.pad(x, (0, (-x.numel()) % 16))
    y = torch.empty_like(x)
    lib.exp2v(x.data_ptr(), y.data_ptr(), x.numel())
    ref = torch.exp2(x.double().clamp(-126.0, 0.0))  # documented: arguments clamped to [-126, 0]
    rel = ((y.double() - ref).abs() / ref).max().item()
    assert rel < 2e-7, rel
    special = y[200_000:200_006].tolist()  # -1e30, -300, -126.5 clamp to 2^-126; -0, 0 give 1; 3 clamps to 1
    assert special[:3] == [2.0**-126] * 3 and special[3:] == [1.0] * 3
