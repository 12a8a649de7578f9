"""Top-p filtering without a sort (C/OpenMP): mass-weighted radix select on the float bits.

Non-negative floats order like their bit patterns, so the 11 high bits of each probability
(sign 0, 8 exponent bits, 3 mantissa bits) name one of 2048 buckets whose order is the value
order. Per row (rows split across threads):
1. one streaming pass adds every probability into its bucket (double accumulators; 8 interleaved
   histograms so that runs of equal buckets do not serialise on one memory location);
2. walking the buckets from the top gives the bucket holding the boundary token and the exact mass
   above it;
3. only that bucket's elements (typically a handful) are gathered (a vector range test per
   ``KV_VW`` floats, scalar compaction only where a lane hits) and sorted, which pins the boundary value ``t`` and the kept mass ``Z`` (in double);
4. one vectorised pass writes ``p >= t ? p / Z : 0`` (streaming stores for large outputs).
Vector code is ``karena/vmath.h`` (AVX-512, AVX2+FMA and generic paths from one source).
Three passes over the row and no ``vocab log vocab`` sort; eager PyTorch sorts, cumsums, scatters
and normalises the whole row.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "karena/vmath.h"

typedef uint32_t kv_u __attribute__((vector_size(KV_VW * 4)));
typedef double kv_d __attribute__((vector_size(KV_VW * 8)));

/* nonzero when any lane of the compare mask m is set */
static inline int kv_any(kv_i m) {
#if KV_VW == 16
  return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
#elif KV_VW == 8
  return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#elif defined(__SSE4_1__)
  return !_mm_testz_si128((__m128i)m, (__m128i)m);
#else
  int32_t t[KV_VW], a = 0;
  memcpy(t, &m, sizeof t);
  for (int i = 0; i < KV_VW; ++i) a |= t[i];
  return a != 0;
#endif
}

#define NB 2048
#define SHIFT 20
#define HW 8
/* outputs larger than this bypass the caches (streaming stores: no read-for-ownership) */
#define STREAM_BYTES (2L << 20)
#define NBP (NB + 40) /* padded stride: the HW histograms must not 4K-alias each other */

static inline uint32_t fbits(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }

static int cmp_desc(const void* a, const void* b) {
  float x = *(const float*)a, y = *(const float*)b;
  return (x < y) - (x > y);
}

/* copy the elements whose bits lie in [lo, hi) to cand; returns their count */
static long gather_bucket(const float* restrict x, long n, uint32_t lo, uint32_t hi, float* restrict cand) {
  long nc = 0, i = 0;
  const kv_u vlo = (kv_u){0} + lo, width = (kv_u){0} + (hi - lo);
  for (; i + KV_VW <= n; i += KV_VW) {
    const kv_u u = (kv_u)kv_load(x + i);
    if (kv_any((kv_i)(u - vlo < width))) /* rare: the boundary bucket holds a handful of elements */
      for (int j = 0; j < KV_VW; ++j) {
        cand[nc] = x[i + j];
        nc += (u[j] - lo) < (hi - lo);
      }
  }
  for (; i < n; ++i) {
    uint32_t u = fbits(x[i]);
    cand[nc] = x[i];
    nc += (u - lo) < (hi - lo);
  }
  return nc;
}

void top_p_f32(const float* restrict x, float* restrict y, long rows, long cols, double p) {
  int stream = rows * cols * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    /* HW interleaved histograms: consecutive elements often share a bucket, and one histogram
       would serialise on the load-add-store chain through that bucket */
    double* hist = (double*)malloc(sizeof(double) * NBP * HW);
    float* cand = (float*)malloc(sizeof(float) * (cols > 0 ? cols : 1));
    #pragma omp for schedule(dynamic, 1) nowait
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      memset(hist, 0, sizeof(double) * NBP * HW);
      long i = 0;
      for (; i + HW <= cols; i += HW)
        for (int j = 0; j < HW; ++j) {
          uint32_t b = (fbits(xr[i + j]) >> SHIFT) & (NB - 1);  /* sign bit is 0 for probabilities */
          hist[j * NBP + b] += (double)xr[i + j];
        }
      for (; i < cols; ++i) hist[(fbits(xr[i]) >> SHIFT) & (NB - 1)] += (double)xr[i];
      for (int j = 1; j < HW; ++j)
        for (long b = 0; b < NB; ++b) hist[b] += hist[j * NBP + b];
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
        long nc = gather_bucket(xr, cols, (uint32_t)bb << SHIFT, (uint32_t)(bb + 1) << SHIFT, cand);
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
      long i0 = 0;
      if (stream) {  /* streaming stores: the output is not re-read, skip read-for-ownership */
        for (; i0 < cols && ((uintptr_t)(yr + i0) & (KV_VW * 4 - 1)); ++i0)
          yr[i0] = (float)((double)xr[i0] * inv) * (float)(xr[i0] >= t);
        const kv_f vt = kv_set1(t);
        for (; i0 + KV_VW <= cols; i0 += KV_VW) {
          const kv_f v = kv_load(xr + i0);
          const kv_f o = __builtin_convertvector(__builtin_convertvector(v, kv_d) * inv, kv_f);
          kv_stream(yr + i0, kv_sel(v >= vt, o, kv_set1(0.0f)));
        }
      }
      #pragma omp simd
      for (long i = i0; i < cols; ++i) {  /* multiply by the 0/1 mask: a select would not vectorise */
        float v = xr[i];
        yr[i] = (float)((double)v * inv) * (float)(v >= t);
      }
    }
    kv_sfence();  /* make this thread's streaming stores visible before the region ends */
    free(cand);
    free(hist);
  }
}
"""

_LIB = load_library(
    _SRC, flags=SIMD_FLAGS, functions={"top_p_f32": (None, ["ptr", "ptr", "long", "long", "double"])}
)


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
