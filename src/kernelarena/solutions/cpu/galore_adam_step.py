"""GaLore-Adam step (C/OpenMP): two skinny GEMMs with Adam and the weight update in their epilogues.

Both products use one packed SGEMM core (the shared ``karena/gemm.h``: Goto/BLIS loop nest, 12x32 AVX-512, 6x16 AVX2
or 6x8 generic register tile, packing routines that take any strides, so ``P^T`` needs no copy). Phase 1 computes
``R = P^T G`` tile by tile and applies Adam to each finished tile (moments written once, the
normalised update kept in a small [r, n] scratch); phase 2 computes ``P N`` and writes
``W (1 - lr wd) - lr alpha / bias_c1 * P N`` straight from the tile, streaming the new weight out
with non-temporal stores (it is written once). Tiles are visited along rows, so ``W`` and the new
weight are read and written as 12 sequential row streams that the hardware prefetchers follow.
Threads own column ranges of the weight, which makes the two phases independent across threads (no
barrier). Eager PyTorch materialises R, the moments' temporaries, N and P N as separate passes.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
#include <math.h>
#include "karena/gemm.h"
/* ---------------- GaLore-Adam step: two GEMMs with fused epilogues, one parallel region -----------
   Each thread owns a range of weight columns. Phase 1: R = P^T G for its columns, with Adam applied
   in the epilogue of each finished R tile (moments written, normalised update N kept in a scratch
   [r, n] buffer). Phase 2: P N for the same columns, with the weight update applied in the
   epilogue, so neither R, N nor P N is ever a separate pass over memory, and no barrier is needed
   between the phases (a thread only reads the N columns it wrote). */
typedef struct {
  const float *m, *v; float *m_out, *v_out; long ld;
  float b1, b2, inv_sqrt_bc2, eps;
} adam_epi_t;

static void adam_epilogue(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                          const void* ctx) {
  const adam_epi_t* e = (const adam_epi_t*)ctx;
  const float omb1 = 1.f - e->b1, omb2 = 1.f - e->b2;
  for (long i = 0; i < mr; ++i) {
    long off = (m0 + i) * e->ld + n0;
    const float* m = e->m + off; const float* v = e->v + off;
    float* mo = e->m_out + off; float* vo = e->v_out + off;
    const float* ai = acc + i * KG_NR;
    float* ci = c + i * ldc;
    #pragma omp simd
    for (long q = 0; q < nr; ++q) {
      float g = ai[q];
      float mi = e->b1 * m[q] + omb1 * g;
      float vi = e->b2 * v[q] + omb2 * (g * g);
      mo[q] = mi;
      vo[q] = vi;
      ci[q] = mi / (sqrtf(vi) * e->inv_sqrt_bc2 + e->eps);  /* bias correction 1 folded into coef */
    }
  }
}

typedef struct { const float* w; long ld; float decay, coef; } weight_epi_t;

static void weight_epilogue(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                            const void* ctx) {
  const weight_epi_t* e = (const weight_epi_t*)ctx;
  for (long i = 0; i < mr; ++i) {
    const float* w = e->w + (m0 + i) * e->ld + n0;
    const float* ai = acc + i * KG_NR;
    float row[KG_NR];
    #pragma omp simd
    for (long q = 0; q < nr; ++q) row[q] = w[q] * e->decay - e->coef * ai[q];
    kg_stream_store(c + i * ldc, row, nr);          /* the new weight is written once: stream it */
  }
}

void galore_adam_step_f32(const float* W, const float* G, const float* P, const float* m1,
                          const float* v1, float* W_out, float* m_out, float* v_out, long m, long n,
                          long r, float b1, float b2, float eps, float inv_sqrt_bc2, float decay,
                          float coef) {
  float* N = (float*)malloc(sizeof(float) * (r * n > 0 ? r * n : 1));  /* R, then Adam's update */
  #pragma omp parallel
  {
    long lo, hi;
    kg_split_cols(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    adam_epi_t ae = {m1, v1, m_out, v_out, n, b1, b2, inv_sqrt_bc2, eps};
    kg_operand pt = {P, 1, r, m, NULL, 0, 0};   /* (i, k) = P[k, i]: P^T, r x m */
    kg_operand g = {G, 1, n, m, NULL, 0, 0};    /* (col, k) = G[k, col] */
    kg_gemm_thread(r, lo, hi, m, &pt, &g, N, n, NULL, adam_epilogue, &ae);
    weight_epi_t we = {W, n, decay, coef};
    kg_operand p = {P, r, 1, r, NULL, 0, 0};    /* (i, k) = P[i, k]: m x r */
    kg_operand nn = {N, 1, n, r, NULL, 0, 0};   /* (col, k) = N[k, col] */
    kg_gemm_thread(m, lo, hi, r, &p, &nn, W_out, n, NULL, weight_epilogue, &we);
    kg_stream_fence();
  }
  free(N);
}
"""

_LIB = load_library(
    _SRC, flags=FLAGS, functions={"galore_adam_step_f32": (None, ["ptr"] * 8 + ["long"] * 3 + ["float"] * 6)}
)


class ModelNew(nn.Module):
    def __init__(
        self, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, step: int, alpha: float
    ):
        super().__init__()
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay, self.step, self.alpha = weight_decay, step, alpha

    def forward(
        self,
        weight: torch.Tensor,
        grad: torch.Tensor,
        proj: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w, g, p = weight.contiguous(), grad.contiguous(), proj.contiguous()
        m1, v1 = exp_avg.contiguous(), exp_avg_sq.contiguous()
        rows, cols = w.shape
        rank = p.shape[1]
        w_out, m_out, v_out = torch.empty_like(w), torch.empty_like(m1), torch.empty_like(v1)
        bias_c1 = 1.0 - self.beta1**self.step
        bias_c2 = 1.0 - self.beta2**self.step
        _LIB.galore_adam_step_f32(
            w.data_ptr(), g.data_ptr(), p.data_ptr(), m1.data_ptr(), v1.data_ptr(),
            w_out.data_ptr(), m_out.data_ptr(), v_out.data_ptr(), rows, cols, rank,
            self.beta1, self.beta2, self.eps, 1.0 / bias_c2**0.5, 1.0 - self.lr * self.weight_decay,
            self.lr * self.alpha / bias_c1,
        )  # fmt: skip
        return w_out, m_out, v_out
