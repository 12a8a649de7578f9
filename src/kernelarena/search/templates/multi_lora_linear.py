"""Multi-LoRA linear template on the shared GEMM core ``karena/gemm.h``.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does); the space is the GEMM
core's cache blocks, shared with gemm_fp32 (``_common.GEMM_SPACE``).
"""

from kernelarena.search.templates._common import GEMM_DEFAULT as DEFAULT
from kernelarena.search.templates._common import GEMM_SPACE as SPACE
from kernelarena.search.templates._common import gemm_constraints as constraints
from kernelarena.search.templates._common import gemm_features as features
from kernelarena.search.templates._common import gemm_lite as lite_space
from kernelarena.search.templates._common import gemm_render

TASK = "multi_lora_linear"
__all__ = ["DEFAULT", "SPACE", "TASK", "constraints", "features", "lite_space", "render"]

_DOC = """Multi-LoRA linear (C/OpenMP): Punica-style per-token adapters fused into one base GEMM.

A pre-pass computes each token's ``t = scale * A[id] x`` (Punica's "shrink", r dot products per
token over contiguous rows). The shared packed SGEMM core (``karena/gemm.h``: 12x32 AVX-512, 6x16
AVX2 or 6x8 generic register tile) then computes ``x W^T`` for the whole batch, and when a C tile is
final its epilogue adds ``t B[id]^T`` (the "expand") from the adapter's transposed ``B`` while the
tile is still in L1. No per-adapter masks, gathers or scatters (the eager version loops over
adapters with them). Threads split the output columns. The base GEMM dominates and runs at about
MKL's speed."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
@GEMM_KNOBS@
#include "karena/gemm.h"

/* ---------------- multi-LoRA: y = x W^T + scale * B[id] A[id] x, per token -------------------------
   A short pre-pass computes t = scale * A[id] x for every token (r dot products over contiguous
   rows, ~1% of the FLOPs). The base GEMM then runs once for all tokens, and when a C tile is
   finished its epilogue adds t (x) B[id]^T to each row from the transposed B of the row's adapter
   while the tile is in L1 (Punica's SGMV expand fused into the GEMM's tile loop). Rows with id -1
   (or any id outside [0, n_adapters)) get the base output only. */
typedef struct { const float* t; const long* ids; const float* Bt; long r, N, n_ad; } lora_epi_t;

static void lora_epilogue(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                          const void* ctx) {
  const lora_epi_t* e = (const lora_epi_t*)ctx;
  for (long i = 0; i < mr; ++i) {
    float row[KG_NR];
    const float* ai = acc + i * KG_NR;
    #pragma omp simd
    for (long q = 0; q < nr; ++q) row[q] = ai[q];
    long a = e->ids[m0 + i];
    if (a >= 0 && a < e->n_ad) {
      const float* t = e->t + (m0 + i) * e->r;
      for (long j = 0; j < e->r; ++j) {
        const float tv = t[j];
        const float* b = e->Bt + (a * e->r + j) * e->N + n0;
        #pragma omp simd
        for (long q = 0; q < nr; ++q) row[q] += tv * b[q];
      }
    }
    float* ci = c + i * ldc;
    #pragma omp simd
    for (long q = 0; q < nr; ++q) ci[q] = row[q];
  }
}

void multi_lora_linear_f32(const float* x, const long* ids, const float* W, const float* A,
                           const float* B, float* y, long M, long K, long N, long r, long n_ad,
                           float scale) {
  float* t = (float*)malloc(sizeof(float) * (M * r > 0 ? M * r : 1));     /* [M, r] */
  float* Bt = (float*)malloc(sizeof(float) * (n_ad * r * N > 0 ? n_ad * r * N : 1));  /* [n_ad, r, N] */
  #pragma omp parallel
  {
    /* t = scale * A[id] x per token: dot products over contiguous rows of x and A (no transpose) */
    #pragma omp for schedule(static) nowait
    for (long m = 0; m < M; ++m) {
      const long a = ids[m];
      float* tm = t + m * r;
      if (a < 0 || a >= n_ad) {
        for (long j = 0; j < r; ++j) tm[j] = 0.f;
        continue;
      }
      const float* xr = x + m * K;
      const float* Aa = A + a * r * K;
      long j = 0;
      for (; j + 8 <= r; j += 8) {            /* 8 independent sums: FMA latency stays hidden */
        const float *a0 = Aa + j * K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
        const float *a4 = a3 + K, *a5 = a4 + K, *a6 = a5 + K, *a7 = a6 + K;
        float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f, s4 = 0.f, s5 = 0.f, s6 = 0.f, s7 = 0.f;
        #pragma omp simd reduction(+:s0, s1, s2, s3, s4, s5, s6, s7)
        for (long k = 0; k < K; ++k) {
          const float xv = xr[k];
          s0 += xv * a0[k]; s1 += xv * a1[k]; s2 += xv * a2[k]; s3 += xv * a3[k];
          s4 += xv * a4[k]; s5 += xv * a5[k]; s6 += xv * a6[k]; s7 += xv * a7[k];
        }
        tm[j] = scale * s0; tm[j + 1] = scale * s1; tm[j + 2] = scale * s2; tm[j + 3] = scale * s3;
        tm[j + 4] = scale * s4; tm[j + 5] = scale * s5; tm[j + 6] = scale * s6; tm[j + 7] = scale * s7;
      }
      for (; j < r; ++j) {
        const float* ar = Aa + j * K;
        float s = 0.f;
        #pragma omp simd reduction(+:s)
        for (long k = 0; k < K; ++k) s += xr[k] * ar[k];
        tm[j] = scale * s;
      }
    }
    /* Bt[a, j, :] = B[a, :, j]: contiguous writes, reads walk B's rows 64 bytes apart */
    #pragma omp for schedule(static)
    for (long aj = 0; aj < n_ad * r; ++aj) {
      const long a = aj / r, j = aj % r;
      const float* src = B + a * N * r + j;
      float* dst = Bt + aj * N;
      for (long n = 0; n < N; ++n) dst[n] = src[n * r];
    }
    long lo, hi;
    kg_split_cols(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    lora_epi_t ep = {t, ids, Bt, r, N, n_ad};
    kg_operand ox = {x, K, 1, K, NULL, 0, 0};
    kg_operand ow = {W, K, 1, K, NULL, 0, 0};
    kg_gemm_thread(M, lo, hi, K, &ox, &ow, y, N, NULL, lora_epilogue, &ep);
  }
  free(Bt);
  free(t);
}
"""

_LIB = load_library(
    _SRC, flags=FLAGS, functions={"multi_lora_linear_f32": (None, ["ptr"] * 6 + ["long"] * 5 + ["float"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: int, n_adapters: int, alpha: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.lora_A = nn.Parameter(torch.empty(n_adapters, rank, in_features))
        self.lora_B = nn.Parameter(torch.empty(n_adapters, out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor, adapter_ids: torch.Tensor) -> torch.Tensor:
        w = self.weight.detach().contiguous()
        a = self.lora_A.detach().contiguous()
        b = self.lora_B.detach().contiguous()
        n_ad, rank, in_f = a.shape
        out_f = w.shape[0]
        x2 = x.contiguous()
        ids = adapter_ids.to(torch.int64).contiguous()
        y = torch.empty(x2.shape[0], out_f, dtype=x.dtype)
        _LIB.multi_lora_linear_f32(
            x2.data_ptr(), ids.data_ptr(), w.data_ptr(), a.data_ptr(), b.data_ptr(), y.data_ptr(),
            x2.shape[0], in_f, out_f, rank, n_ad, self.scale,
        )  # fmt: skip
        return y
'''


def render(config: dict) -> str:
    return gemm_render(TASK, _SOLUTION, config, _DOC)
