"""Fused MoE top-k router (C/OpenMP): float32 router GEMM with a certified top-k epilogue.

The router weight is packed once per call into 64-expert panels; a 6-token x 64-expert (karena/panel64.h)
register tile (24 accumulators) computes the float32 logits of six tokens at a time, and the
epilogue runs while the tile is hot in L1: it finds the k-th largest float32 logit, keeps every
expert within ``2 * bound`` of it, where ``bound = gamma_d * ||x_t|| * max_e ||w_e||`` is a
rigorous bound on the float32 dot-product rounding error (any summation order, with FMA), and
re-evaluates only those few experts in float64 (exact products, double accumulation). The
float64 values decide the selection and its order and give the renormalized weights
(a softmax over the k selected logits: the full softmax denominator cancels). So the result
agrees with the task's float64 router while doing float32 work for all but ~k experts per token.
Tokens are split across OpenMP threads by 6-row tiles.
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


static double dot_f64(const float* x, const float* w, long d) {
  double s = 0.0;
  #pragma omp simd reduction(+:s)
  for (long i = 0; i < d; ++i) s += (double)x[i] * (double)w[i];
  return s;
}

static double norm_f64(const float* x, long d) {
  double s = 0.0;
  #pragma omp simd reduction(+:s)
  for (long i = 0; i < d; ++i) s += (double)x[i] * (double)x[i];
  return sqrt(s);
}

void topk_router(const float* x, const float* w, float* out_w, long* out_id,
                 long t, long d, long e, long k) {
  long np = (e + NR - 1) / NR, ep = np * NR;
  float* wp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(ep * d));
  pack_panels(w, e, d, wp);
  double wmax = 0.0;
  for (long j = 0; j < e; ++j) { double nn = norm_f64(w + j * d, d); if (nn > wmax) wmax = nn; }
  /* |fl32(x.w) - x.w| <= gamma_d * sum|x_i w_i| <= gamma_d * ||x|| ||w||, gamma_d = d u / (1 - d u) */
  const double u = ldexp(1.0, -24);
  const double gamma = (double)d * u / (1.0 - (double)d * u);
  long ntiles = (t + MR - 1) / MR;
  #pragma omp parallel
  {
    float* tile = (float*)aligned_alloc(64, sizeof(float) * (size_t)(MR * ep));
    float* ctile = (float*)aligned_alloc(64, sizeof(float) * MR * NR);
    long* cand = (long*)malloc(sizeof(long) * (size_t)e);
    double* cval = (double*)malloc(sizeof(double) * (size_t)e);
    float* topv = (float*)malloc(sizeof(float) * (size_t)k);
    #pragma omp for schedule(static)
    for (long ti = 0; ti < ntiles; ++ti) {
      long m0 = ti * MR;
      const float* a[MR];
      for (int i = 0; i < MR; ++i) a[i] = x + (m0 + i < t ? m0 + i : m0) * d;
      for (long p = 0; p < np; ++p) {
        micro_6x64(a, wp + p * d * NR, d, ctile);
        for (int i = 0; i < MR; ++i) memcpy(tile + i * ep + p * NR, ctile + i * NR, sizeof(float) * NR);
      }
      for (int i = 0; i < MR && m0 + i < t; ++i) {
        const float* lg = tile + i * ep;
        const float* xr = x + (m0 + i) * d;
        /* k-th largest float32 logit (insertion into a sorted list of k) */
        long nk = 0;
        for (long j = 0; j < e; ++j) {
          float v = lg[j];
          if (nk < k) { long q = nk++; while (q > 0 && topv[q - 1] < v) { topv[q] = topv[q - 1]; --q; } topv[q] = v; }
          else if (v > topv[k - 1]) { long q = k - 1; while (q > 0 && topv[q - 1] < v) { topv[q] = topv[q - 1]; --q; } topv[q] = v; }
        }
        double bound = gamma * norm_f64(xr, d) * wmax * 1.001 + 1e-300;
        double thr = (double)topv[k - 1] - 2.0 * bound;
        long nc = 0;
        for (long j = 0; j < e; ++j)
          if ((double)lg[j] >= thr) cand[nc++] = j;
        /* float64 re-evaluation of the candidates, then exact ordering (ties: lower id first) */
        for (long c = 0; c < nc; ++c) cval[c] = dot_f64(xr, w + cand[c] * d, d);
        for (long s = 0; s < k; ++s) {
          long best = s;
          for (long c = s + 1; c < nc; ++c)
            if (cval[c] > cval[best] || (cval[c] == cval[best] && cand[c] < cand[best])) best = c;
          double tv = cval[s]; cval[s] = cval[best]; cval[best] = tv;
          long ti2 = cand[s]; cand[s] = cand[best]; cand[best] = ti2;
        }
        double mx = cval[0], den = 0.0;
        for (long s = 0; s < k; ++s) den += exp(cval[s] - mx);
        float* ow = out_w + (m0 + i) * k;
        long* oi = out_id + (m0 + i) * k;
        for (long s = 0; s < k; ++s) { ow[s] = (float)(exp(cval[s] - mx) / den); oi[s] = cand[s]; }
      }
    }
    free(tile); free(ctile); free(cand); free(cval); free(topv);
  }
  free(wp);
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"topk_router": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self, hidden: int, num_experts: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.weight = nn.Parameter(torch.empty(num_experts, hidden))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        t, d = x.shape
        e = w.shape[0]
        out_w = torch.empty(t, self.top_k, dtype=torch.float32)
        out_id = torch.empty(t, self.top_k, dtype=torch.int64)
        _LIB.topk_router(x.data_ptr(), w.data_ptr(), out_w.data_ptr(), out_id.data_ptr(), t, d, e, self.top_k)
        return out_w, out_id
