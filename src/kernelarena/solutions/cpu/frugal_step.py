"""Fused FRUGAL step (C/OpenMP): one pass over the parameter, Adam rows and signSGD rows alike.

A row map (row -> index of its compact state row, or -1) is built once per call on the host side of
the kernel (O(rows)). Rows are then split across OpenMP threads; a row outside the subspace is a
single vectorized pass ``p * decay - lr_free * sign(g)`` (the sign as a branch-free select), a row
in the subspace runs the fused Adam update and writes its two moment rows. Every byte is read once
and every output written once (through L1 buffers and non-temporal stores, which skip the
read-for-ownership of the write-once output lines), where the eager version gathers, scatters and
makes ~12 passes.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "karena/vmath.h"

/* Write-once outputs go straight to memory with non-temporal stores (no read-for-ownership of the
   destination lines, which a plain store would fetch first); the edges use plain stores. */
static inline void stream_store(float* restrict dst, const float* restrict src, long n) {
  kv_stream_copy(dst, src, n);
}

static inline void stream_fence(void) {  /* order this thread's streaming stores before returning */
  kv_sfence();
}

#define BLK 512

void frugal_step_f32(const float* restrict p, const float* restrict g, const float* restrict m,
                     const float* restrict v, const long* restrict sel, float* restrict p_out,
                     float* restrict m_out, float* restrict v_out, long rows, long cols, long k,
                     float beta1, float beta2, float decay, float step_size, float inv_sqrt_bc2,
                     float eps, float lr_free) {
  long* slot = (long*)malloc(sizeof(long) * (rows > 0 ? rows : 1));
  for (long r = 0; r < rows; ++r) slot[r] = -1;
  for (long j = 0; j < k; ++j)
    if (sel[j] >= 0 && sel[j] < rows) slot[sel[j]] = j; /* out-of-range ids are ignored, never written */
  const float one_m_b1 = 1.f - beta1, one_m_b2 = 1.f - beta2;
  #pragma omp parallel
  {
    float pb[BLK], mb[BLK], vb[BLK];
    #pragma omp for schedule(static)
    for (long r = 0; r < rows; ++r) {
      const long j = slot[r];
      for (long c0 = 0; c0 < cols; c0 += BLK) {
        const long len = cols - c0 < BLK ? cols - c0 : BLK;
        const float* pr = p + r * cols + c0;
        const float* gr = g + r * cols + c0;
        if (j < 0) {                            /* state-free: signSGD */
          #pragma omp simd
          for (long c = 0; c < len; ++c) {
            float s = gr[c] > 0.f ? 1.f : (gr[c] < 0.f ? -1.f : 0.f);
            pb[c] = pr[c] * decay - lr_free * s;
          }
        } else {                                /* subspace: AdamW with the row's compact state */
          const float* mr = m + j * cols + c0;
          const float* vr = v + j * cols + c0;
          #pragma omp simd
          for (long c = 0; c < len; ++c) {
            float gi = gr[c];
            float mi = beta1 * mr[c] + one_m_b1 * gi;
            float vi = beta2 * vr[c] + one_m_b2 * (gi * gi);
            pb[c] = pr[c] * decay - step_size * (mi / (sqrtf(vi) * inv_sqrt_bc2 + eps));
            mb[c] = mi;
            vb[c] = vi;
          }
          stream_store(m_out + j * cols + c0, mb, len);
          stream_store(v_out + j * cols + c0, vb, len);
        }
        stream_store(p_out + r * cols + c0, pb, len);
      }
    }
    stream_fence();
  }
  free(slot);
}
"""

# PyTorch's own floating-point contract (it is built with -fno-math-errno -fno-trapping-math): lets gcc
# vectorize loops with sqrtf and the clamps of the inlined exp; results, inf and nan are unchanged.
_FLAGS = SIMD_FLAGS

_LIB = load_library(
    _SRC,
    flags=_FLAGS,
    functions={
        "frugal_step_f32": (
            None,
            ["ptr"] * 8 + ["long", "long", "long"] + ["float"] * 7,
        )
    },
)


class ModelNew(nn.Module):
    def __init__(
        self,
        lr: float,
        lr_free: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        step: int,
    ):
        super().__init__()
        self.lr, self.lr_free, self.beta1, self.beta2, self.eps = lr, lr_free, beta1, beta2, eps
        self.weight_decay, self.step = weight_decay, step

    def forward(
        self,
        param: torch.Tensor,
        grad: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
        rows_sel: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p, g = param.contiguous(), grad.contiguous()
        m, v = exp_avg.contiguous(), exp_avg_sq.contiguous()
        sel = rows_sel.to(torch.int64).contiguous()
        p_out, m_out, v_out = torch.empty_like(p), torch.empty_like(m), torch.empty_like(v)
        rows, cols = p.shape
        bias_c1 = 1.0 - self.beta1**self.step
        bias_c2 = 1.0 - self.beta2**self.step
        _LIB.frugal_step_f32(
            p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr(), sel.data_ptr(),
            p_out.data_ptr(), m_out.data_ptr(), v_out.data_ptr(), rows, cols, sel.numel(),
            self.beta1, self.beta2, 1.0 - self.lr * self.weight_decay, self.lr / bias_c1,
            1.0 / bias_c2**0.5, self.eps, self.lr_free,
        )  # fmt: skip
        return p_out, m_out, v_out
