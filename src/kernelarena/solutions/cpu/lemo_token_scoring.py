"""LeMo token scoring + top-fraction gather in three short phases (C/OpenMP).

1. Scores: one pass over ``h_in`` and ``h_out``; per token the float32 difference is widened to
   double and squared-and-summed with a vectorized ``simd`` reduction (the squares of floats are
   exact in double, so the order of the sum moves the score by ~1e-13 relative at most: the
   selection is the reference's).
2. Selection: per sequence, a quickselect (expected O(seq)) finds the k-th largest score; one scan
   in position order then keeps the tokens above it (and, should exact ties ever occur, the lowest
   positions equal to it), which yields the kept positions already sorted - no top-k sort, no index
   sort as in the eager version.
3. Gather: the kept rows of ``h_out`` are copied with non-temporal stores, spread over the threads.
"""

import math

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

/* k-th largest (1-based) of a[0..n), reorders a; expected O(n) */
static double kth_largest(double* a, long n, long k) {
  long lo = 0, hi = n - 1, want = k - 1;
  while (lo < hi) {
    long mid = lo + (hi - lo) / 2;          /* median of three as pivot */
    double x = a[lo], y = a[mid], z = a[hi], piv;
    if ((x >= y) == (y >= z)) piv = y; else if ((y >= x) == (x >= z)) piv = x; else piv = z;
    long i = lo, j = hi;
    while (i <= j) {                          /* Hoare partition, descending */
      while (a[i] > piv) ++i;
      while (a[j] < piv) --j;
      if (i <= j) { double t = a[i]; a[i] = a[j]; a[j] = t; ++i; --j; }
    }
    if (want <= j) hi = j; else if (want >= i) lo = i; else return a[want];
  }
  return a[want];
}

void lemo_score_gather_f32(const float* restrict hin, const float* restrict hout,
                           float* restrict scores, float* restrict kept, long B, long T, long D,
                           long k) {
  double* s64 = (double*)malloc(sizeof(double) * (B * T > 0 ? B * T : 1));
  long* pos = (long*)malloc(sizeof(long) * (B * k > 0 ? B * k : 1));
  #pragma omp parallel
  {
    #pragma omp for schedule(static)
    for (long row = 0; row < B * T; ++row) {
      const float* a = hin + row * D; const float* b = hout + row * D;
      double acc = 0.0;
      #pragma omp simd reduction(+:acc)
      for (long j = 0; j < D; ++j) {
        double d = (double)(b[j] - a[j]);     /* rounded to float first, as in the reference */
        acc += d * d;
      }
      s64[row] = sqrt(acc);
      scores[row] = (float)s64[row];
    }
    #pragma omp for schedule(static)
    for (long bi = 0; bi < B; ++bi) {
      const double* s = s64 + bi * T;
      double* tmp = (double*)malloc(sizeof(double) * T);
      memcpy(tmp, s, sizeof(double) * T);
      double thr = kth_largest(tmp, T, k);
      free(tmp);
      long above = 0;
      for (long t = 0; t < T; ++t) above += s[t] > thr;
      long ties = k - above, n = 0;           /* ties at the threshold: lowest positions first */
      long* p = pos + bi * k;
      for (long t = 0; t < T && n < k; ++t) {
        if (s[t] > thr) p[n++] = t;
        else if (s[t] == thr && ties > 0) { p[n++] = t; --ties; }
      }
    }
    #pragma omp for schedule(static)
    for (long r = 0; r < B * k; ++r) {
      long bi = r / k;
      stream_store(kept + r * D, hout + (bi * T + pos[r]) * D, D);
    }
    stream_fence();
  }
  free(pos);
  free(s64);
}
"""

# PyTorch's own floating-point contract (it is built with -fno-math-errno -fno-trapping-math): lets gcc
# vectorize loops with sqrtf and the clamps of the inlined exp; results, inf and nan are unchanged.
_FLAGS = SIMD_FLAGS

_LIB = load_library(
    _SRC,
    flags=_FLAGS,
    functions={"lemo_score_gather_f32": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self, keep_ratio: float):
        super().__init__()
        self.keep_ratio = keep_ratio

    def forward(self, h_in: torch.Tensor, h_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = h_in.contiguous(), h_out.contiguous()
        batch, seq, dim = b.shape
        k = max(1, math.ceil(self.keep_ratio * seq))
        scores = torch.empty(batch, seq, dtype=torch.float32)
        kept = torch.empty(batch, k, dim, dtype=b.dtype)
        _LIB.lemo_score_gather_f32(
            a.data_ptr(), b.data_ptr(), scores.data_ptr(), kept.data_ptr(), batch, seq, dim, k
        )
        return scores, kept
