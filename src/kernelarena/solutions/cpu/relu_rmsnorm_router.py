"""Fused ReLU + RMSNorm router (C/OpenMP): router GEMM with the normalization in its epilogue.

The router weight is packed once per call into 64-expert panels (k-major, zero padded); a
6-token x 64-expert tile of karena/panel64.h (broadcast-FMA, register block per ISA) computes six tokens'
logits at a time over the full hidden dimension. While that row block is hot in L1 the epilogue
applies ReLU, reduces the sum of squares over the experts, and writes
``relu(l) * inv_rms * norm_weight`` straight to the output: one write of the gates, no logits or
ReLU temporaries. Tokens are split across OpenMP threads by 6-row tiles.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "karena/panel64.h"


void relu_rms_router(const float* x, const float* w, const float* g, float* out,
                     long t, long d, long e, float eps) {
  long np = (e + NR - 1) / NR, ep = np * NR;
  float* wp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(ep * d));
  pack_panels(w, e, d, wp);
  long ntiles = (t + MR - 1) / MR;
  #pragma omp parallel
  {
    float* tile = (float*)aligned_alloc(64, sizeof(float) * (size_t)(MR * ep));
    #pragma omp for schedule(static)
    for (long ti = 0; ti < ntiles; ++ti) {
      long m0 = ti * MR;
      const float* a[MR];
      for (int i = 0; i < MR; ++i) a[i] = x + (m0 + i < t ? m0 + i : m0) * d;
      float ctile[MR * NR];
      for (long p = 0; p < np; ++p) {
        micro_6x64(a, wp + p * d * NR, d, ctile);
        for (int i = 0; i < MR; ++i) memcpy(tile + i * ep + p * NR, ctile + i * NR, sizeof(float) * NR);
      }
      for (int i = 0; i < MR && m0 + i < t; ++i) {
        float* lg = tile + i * ep;
        double ss = 0.0;
        for (long j = 0; j < e; ++j) {
          float v = lg[j] > 0.f ? lg[j] : 0.f;
          lg[j] = v;
          ss += (double)v * (double)v;
        }
        float inv = (float)(1.0 / sqrt(ss / (double)e + (double)eps));
        float* o = out + (m0 + i) * e;
        #pragma omp simd
        for (long j = 0; j < e; ++j) o[j] = lg[j] * inv * g[j];
      }
    }
    free(tile);
  }
  free(wp);
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"relu_rms_router": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, hidden: int, num_experts: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(num_experts, hidden))
        self.norm_weight = nn.Parameter(torch.ones(num_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        g = self.norm_weight.detach().contiguous()
        t, d = x.shape
        e = w.shape[0]
        out = torch.empty(t, e, dtype=torch.float32)
        _LIB.relu_rms_router(x.data_ptr(), w.data_ptr(), g.data_ptr(), out.data_ptr(), t, d, e, self.eps)
        return out
