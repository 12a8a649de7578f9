"""Top-p filtering without a sort (C/OpenMP): mass-weighted radix select on the float bits.

Non-negative floats order like their bit patterns, so the 11 high bits of each probability
(sign 0, 8 exponent bits, 3 mantissa bits) name one of 2048 buckets whose order is the value
order. Per row (rows split across threads):
1. one streaming pass adds every probability into its bucket (double accumulators; 8 interleaved
   histograms so that runs of equal buckets do not serialise on one memory location);
2. walking the buckets from the top gives the bucket holding the boundary token and the exact mass
   above it;
3. only that bucket's elements (typically a handful) are gathered and sorted, which pins the
   boundary value ``t`` and the kept mass ``Z`` (in double);
4. one vectorised pass writes ``p >= t ? p / Z : 0``.
Three passes over the row and no ``vocab log vocab`` sort; eager PyTorch sorts, cumsums, scatters
and normalises the whole row.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NB 2048
#define SHIFT 20
#define HW 8

static inline uint32_t fbits(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }

static int cmp_desc(const void* a, const void* b) {
  float x = *(const float*)a, y = *(const float*)b;
  return (x < y) - (x > y);
}

void top_p_f32(const float* restrict x, float* restrict y, long rows, long cols, double p) {
  #pragma omp parallel
  {
    /* HW interleaved histograms: consecutive elements often share a bucket, and one histogram
       would serialise on the load-add-store chain through that bucket */
    double* hist = (double*)malloc(sizeof(double) * NB * HW);
    float* cand = (float*)malloc(sizeof(float) * (cols > 0 ? cols : 1));
    #pragma omp for schedule(dynamic, 1)
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      memset(hist, 0, sizeof(double) * NB * HW);
      long i = 0;
      for (; i + HW <= cols; i += HW)
        for (int j = 0; j < HW; ++j) {
          uint32_t b = (fbits(xr[i + j]) >> SHIFT) & (NB - 1);  /* sign bit is 0 for probabilities */
          hist[j * NB + b] += (double)xr[i + j];
        }
      for (; i < cols; ++i) hist[(fbits(xr[i]) >> SHIFT) & (NB - 1)] += (double)xr[i];
      for (int j = 1; j < HW; ++j)
        for (long b = 0; b < NB; ++b) hist[b] += hist[j * NB + b];
      double above = 0.0;  /* mass of all buckets above the boundary bucket */
      long bb = -1;
      for (long b = NB - 1; b >= 0; --b) {
        if (above + hist[b] >= p) { bb = b; break; }
        above += hist[b];
      }
      float t;
      double z;
      if (bb < 0) {  /* top_p above the row's total mass: everything is kept */
        t = -INFINITY;
        z = above;
      } else {
        long nc = 0;
        for (long i = 0; i < cols; ++i)
          if ((long)((fbits(xr[i]) >> SHIFT) & (NB - 1)) == bb) cand[nc++] = xr[i];
        qsort(cand, nc, sizeof(float), cmp_desc);
        double cum = above;
        long j = 0;
        for (; j < nc; ++j) {
          cum += cand[j];
          if (cum >= p) break;
        }
        if (j >= nc) j = nc - 1;  /* rounding between the two sums: the bucket's last element */
        t = cand[j];
        while (j + 1 < nc && cand[j + 1] == t) cum += cand[++j];  /* equal values stay together */
        z = cum;
      }
      double inv = 1.0 / z;
      #pragma omp simd
      for (long i = 0; i < cols; ++i) yr[i] = xr[i] >= t ? (float)((double)xr[i] * inv) : 0.0f;
    }
    free(cand);
    free(hist);
  }
}
"""

_LIB = load_library(_SRC, functions={"top_p_f32": (None, ["ptr", "ptr", "long", "long", "double"])})


class ModelNew(nn.Module):
    def __init__(self, top_p: float):
        super().__init__()
        self.top_p = top_p

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        probs = probs.contiguous()
        out = torch.empty_like(probs)
        cols = probs.shape[-1]
        _LIB.top_p_f32(
            probs.data_ptr(), out.data_ptr(), probs.numel() // max(cols, 1), cols, float(self.top_p)
        )
        return out
