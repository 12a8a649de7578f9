"""eDKM soft k-means clustering of weights without the [N, K] attention matrix (C/OpenMP).

Weights are processed in blocks of 256 that live in L1. For a block, one sweep over the K centroids
finds each weight's largest logit ``-(w - c_k)^2 / tau`` (the nearest centroid), a second sweep
accumulates ``sum_k e_k c_k`` and ``sum_k e_k`` with ``e_k = exp(logit_k - max)`` (a numerically safe
softmax), and the block is written as their ratio. Every inner loop runs over the 256 weights of
the block, so gcc vectorizes it 16 wide with an inlined polynomial ``exp`` (libm's ``expf`` would
keep it scalar). One read of ``w``, one write of the output; blocks are split across OpenMP threads.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>

/* exp(x) for float: 2^n * p(r), r = x - n ln2 (Cody-Waite split of ln2), p the classic Cephes expf
   minimax polynomial (S. Moshier), ~1 ulp; inlined so that loops calling it vectorize */
static inline float exp_f32(float x) {
  float xc = x < -87.33654f ? -87.33654f : (x > 88.37626f ? 88.37626f : x);
  float n = floorf(xc * 1.44269504088896341f + 0.5f);
  float r = fmaf(n, -0.693359375f, xc);
  r = fmaf(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  p = fmaf(p, r * r, r) + 1.f;
  union { int32_t i; float f; } u = {.i = ((int32_t)n + 127) << 23};
  float y = p * u.f;
  y = x < -87.33654f ? 0.f : y;
  return x > 88.72283f ? INFINITY : y;
}

#define BLK 256

void soft_kmeans_f32(const float* restrict w, const float* restrict c, float* restrict out,
                     long n, long K, float tau) {
  long nblk = (n + BLK - 1) / BLK;
  const float neg_inv_tau = -1.f / tau;
  #pragma omp parallel for schedule(static)
  for (long blk = 0; blk < nblk; ++blk) {
    long i0 = blk * BLK, len = n - i0 < BLK ? n - i0 : BLK;
    const float* wb = w + i0;
    float mx[BLK], num[BLK], den[BLK];
    for (long j = 0; j < len; ++j) { mx[j] = -INFINITY; num[j] = 0.f; den[j] = 0.f; }
    for (long k = 0; k < K; ++k) {
      const float ck = c[k];
      #pragma omp simd
      for (long j = 0; j < len; ++j) {
        float d = wb[j] - ck;
        float s = (d * d) * neg_inv_tau;
        mx[j] = s > mx[j] ? s : mx[j];
      }
    }
    for (long k = 0; k < K; ++k) {
      const float ck = c[k];
      #pragma omp simd
      for (long j = 0; j < len; ++j) {
        float d = wb[j] - ck;
        float e = exp_f32((d * d) * neg_inv_tau - mx[j]);
        num[j] += e * ck;
        den[j] += e;
      }
    }
    #pragma omp simd
    for (long j = 0; j < len; ++j) out[i0 + j] = num[j] / den[j];
  }
}
"""

# PyTorch's own floating-point contract (it is built with -fno-math-errno -fno-trapping-math): lets gcc
# vectorize loops with sqrtf and the clamps of the inlined exp; results, inf and nan are unchanged.
_FLAGS = SIMD_FLAGS

_LIB = load_library(
    _SRC,
    flags=_FLAGS,
    functions={"soft_kmeans_f32": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, n_clusters: int, tau: float):
        super().__init__()
        self.centroids = nn.Parameter(torch.empty(n_clusters))
        self.tau = tau

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = w.contiguous()
        c = self.centroids.detach().contiguous()
        out = torch.empty_like(x)
        _LIB.soft_kmeans_f32(x.data_ptr(), c.data_ptr(), out.data_ptr(), x.numel(), c.numel(), self.tau)
        return out
