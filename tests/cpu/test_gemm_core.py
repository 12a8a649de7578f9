"""The shared GEMM core ``karena/gemm.h`` on every SIMD path this machine can run (AVX-512, AVX2 forced
with ``-march=x86-64-v3``, generic), and the built-in gemm_fp32 rendered from its template."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import pytest
import torch

from kernelarena.backends import c, gemm_build
from kernelarena.backends.rendered import best_stored_config, default_config
from kernelarena.search.store import EvalRecord, TuneStore
from kernelarena.search.templates import load_template

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(180)]

_SRC = r"""
#include "karena/gemm.h"
const char* isa(void) { return KG_ISA; }
const char* i8path(void) { return KG_I8_PATH; }

/* the quantized GEMMs' int8 block: x [nx rows, K], w [nw rows, K] -> acc [4][4] */
void dot_i8(const int8_t* x, long nx, const int8_t* w, long nw, long K, int32_t* acc) {
  const int8_t *xr[4], *wr[4];
  int32_t ws[4];
  for (long i = 0; i < 4; ++i) {
    xr[i] = x + (i < nx ? i : 0) * K;
    wr[i] = w + (i < nw ? i : 0) * K;
    ws[i] = kg_i8_sum(wr[i], K);
  }
  kg_dot_i8_4x4(xr, (int)nx, wr, (int)nw, K, ws, acc);
}

/* C = A[M,K] @ B[K,N] (B k-major: the packing path gemm_fp32 uses) */
void mm(const float* a, const float* b, float* c, long M, long K, long N) {
  const kg_operand A = {a, K, 1, K, NULL, 0, 0};
  const kg_operand B = {b, 1, N, K, NULL, 0, 0};
  kg_sgemm(M, N, K, &A, &B, c, N, NULL, NULL);
}

/* an epilogue that sees every finished tile exactly once: c = 2 * acc + 1 */
static void affine(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr, const void* ctx) {
  (void)m0; (void)n0; (void)ctx;
  for (long i = 0; i < mr; ++i)
    for (long j = 0; j < nr; ++j) c[i * ldc + j] = 2.f * acc[i * KG_NR + j] + 1.f;
}

/* y = x W^T + (x At) Bl^T: W [N,K] row-major, the low-rank product rides as K extension columns */
void lowrank(const float* x, const float* W, const float* At, const float* Bl, float* y,
             long M, long K, long N, long r) {
  float* t = (float*)calloc((size_t)(M * r + 1), sizeof(float));
  kg_lowrank lr = {At, NULL, r, K, 1, t, 0};
  const kg_operand ox = {x, K, 1, K, t, r, 1};
  const kg_operand ow = {W, K, 1, K, Bl, r, 1};
  kg_gemm_thread(M, 0, N, K + r, &ox, &ow, y, N, &lr, affine, NULL);
  free(t);
}
"""

_FNS = {
    "isa": ("ptr", []),
    "i8path": ("ptr", []),
    "dot_i8": (None, ["ptr", "long", "ptr", "long", "long", "ptr"]),
    "mm": (None, ["ptr"] * 3 + ["long"] * 3),
    "lowrank": (None, ["ptr"] * 5 + ["long"] * 4),
}


@pytest.fixture(scope="module", params=gemm_build.runnable_paths())
def lib(request, build_on_path):
    return build_on_path(_SRC, _FNS, request.param)


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


@pytest.mark.parametrize("m,k,n", [(37, 300, 333), (1, 5, 70), (13, 700, 1), (64, 0, 19), (130, 257, 96)])
def test_sgemm_matches_float64(lib, m, k, n):
    g = torch.Generator().manual_seed(m * 1000 + n)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    out = torch.full((m, n), float("nan"))
    lib.mm(_ptr(a), _ptr(b), _ptr(out), m, k, n)
    ref = (a.double() @ b.double()).float()
    torch.testing.assert_close(out, ref, atol=1e-4 * max(1.0, k**0.5), rtol=1e-4)


def test_lowrank_extension_and_epilogue(lib):
    # r = 24 crosses a vector width on every path; K = 530 folds a short K tail into the blocks
    m, k, n, r = 29, 530, 75, 24
    g = torch.Generator().manual_seed(7)
    x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    at, bl = torch.randn(k, r, generator=g), torch.randn(n, r, generator=g)
    y = torch.full((m, n), float("nan"))
    lib.lowrank(_ptr(x), _ptr(w), _ptr(at), _ptr(bl), _ptr(y), m, k, n, r)
    xd = x.double()
    ref = 2 * (xd @ w.double().T + (xd @ at.double()) @ bl.double().T) + 1
    torch.testing.assert_close(y, ref.float(), atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("k", [0, 1, 15, 17, 63, 64, 100, 4096])
@pytest.mark.parametrize("nx,nw", [(4, 4), (1, 3), (3, 1)])
def test_int8_dot_block_is_exact_for_every_int8_value(lib, k, nx, nw):
    # the VNNI path biases x to unsigned and takes 128 * sum(w) back: -128 and 127 at both ends,
    # K tails that fill part of a vector, rows past nx / nw repeated and ignored
    g = torch.Generator().manual_seed(k * 16 + nx * 4 + nw)
    x = torch.randint(-128, 128, (nx, max(k, 1)), generator=g, dtype=torch.int8)[:, :k].contiguous()
    w = torch.randint(-128, 128, (nw, max(k, 1)), generator=g, dtype=torch.int8)[:, :k].contiguous()
    if k:
        x[0, 0], w[0, 0], x[-1, -1], w[-1, -1] = -128, -128, 127, -128
    acc = torch.full((4, 4), -7, dtype=torch.int32)
    lib.dot_i8(_ptr(x), nx, _ptr(w), nw, k, _ptr(acc))
    ref = x.to(torch.int64) @ w.to(torch.int64).T
    assert torch.equal(acc[:nx, :nw].to(torch.int64), ref)


def test_bench_records_state_the_path_the_build_took(lib, monkeypatch):
    # what a bench record calls the path (gcc's macros for these flags) is what the header compiled
    isa = ctypes.string_at(lib.isa()).decode()
    monkeypatch.setenv("KARENA_CPU_ISA", isa)
    assert gemm_build.simd_path((*c.DEFAULT_FLAGS, *gemm_build.isa_flags())) == isa


def test_int8_dot_block_takes_the_widest_path(lib):
    path = ctypes.string_at(lib.i8path()).decode()
    isa = ctypes.string_at(lib.isa()).decode()
    want = {"generic": "generic", "avx2": "avx2"}.get(isa)
    if want is None:  # the AVX-512 build: VNNI where the machine has it
        want = "avx512-vnni" if "avx512_vnni" in Path("/proc/cpuinfo").read_text().split() else "avx2"
    assert path == want


def _record(template: str, cfg: dict, median_ms: float, machine: str) -> EvalRecord:
    point = {"template": template, **cfg}
    return EvalRecord(
        task_hash="t", template=template, template_hash="h", config_json=json.dumps(point, sort_keys=True),
        shape_id="s", machine_id=machine, task="gemm_fp32", ok=True, median_ms=median_ms, ci_ms=None,
        reason=None, baseline_ms=10.0,
    )  # fmt: skip


@pytest.mark.unit
def test_builtin_config_is_the_best_stored_one_for_this_machine(tmp_path):
    tpl = load_template("gemm_fp32")
    assert best_stored_config(tpl, tmp_path / "absent.db", "m1") is None  # no store: default
    assert not (tmp_path / "absent.db").exists()  # reading never creates a store
    fast = dict(default_config(tpl), kc=384)
    slow = dict(default_config(tpl), kc=128)
    other_machine = dict(default_config(tpl), kc=512)
    invalid = dict(default_config(tpl), kc=999)  # outside the space (an older template version)
    with TuneStore(tmp_path / "k.db") as store:
        store.put(_record("gemm_fp32", slow, 9.0, "m1"))
        store.put(_record("gemm_fp32", fast, 4.0, "m1"))
        store.put(_record("gemm_fp32", other_machine, 1.0, "m2"))
        store.put(_record("gemm_fp32", invalid, 0.5, "m1"))
        store.put(_record("gemm_fp32__blocked", {"tm": 8}, 0.1, "m1"))
    assert best_stored_config(tpl, tmp_path / "k.db", "m1") == fast
    assert best_stored_config(tpl, tmp_path / "k.db", "m3") is None
