"""KVMerger Gaussian merge (C/OpenMP): one pass per merging set while its rows sit in L1.

Merging sets are runs of consecutive tokens, so a set is a contiguous [size x head_dim] slab of K
and V. A first cheap pass over ``set_ids`` (ints only) finds each head's set starts; then work items
(head, block of 64 sets) run in parallel. Per set: the pivot's key row is loaded, member distances
are computed with vectorized squared-difference sums, the bandwidth (mean distance) and the
Gaussian weights follow in double precision (a handful of scalars), and the weighted K and V row
sums are accumulated with the rows still in L1 -- K and V are read from memory once, the merged
rows written once. Eager PyTorch instead materializes the pivot key of every token, the distance
tensor, the weighted copies ``w * keys`` / ``w * values`` and runs five scatter_adds.
If ``set_ids`` of a head is not a run-length sequence (not produced by this task, but legal for the
reference), that head falls back to a generic scatter-style two-pass kernel.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SETS_PER_ITEM 64

static float sqdist(const float* a, const float* b, long d) {
  float s = 0.f;
  #pragma omp simd reduction(+:s)
  for (long c = 0; c < d; ++c) { float t = a[c] - b[c]; s += t * t; }
  return s;
}

/* returns 0 ok, 1 bad index */
int kv_merge(const float* keys, const float* vals, const long* set_ids, const long* pivots,
             float* mk, float* mv, long bh, long s, long d, long m, double eps) {
  long* start = (long*)malloc(sizeof(long) * (size_t)(bh * (m + 1)));
  char* contiguous = (char*)malloc((size_t)bh);
  int bad = 0;
  #pragma omp parallel for schedule(static) reduction(|:bad)
  for (long p = 0; p < bh; ++p) {
    const long* sid = set_ids + p * s;
    long* st = start + p * (m + 1);
    const long* pv = pivots + p * m;
    for (long j = 0; j < m; ++j) if (pv[j] < 0 || pv[j] >= s) bad = 1;
    int ok = 1;
    long cur = 0;
    st[0] = 0;
    if (s > 0 && sid[0] != 0) ok = 0;
    for (long i = 0; i < s; ++i) {
      long v = sid[i];
      if (v < 0 || v >= m) { bad = 1; ok = 0; continue; }
      if (!ok || v == cur) continue;
      if (v != cur + 1) { ok = 0; continue; }
      cur = v; st[cur] = i;
    }
    if (ok && cur != m - 1) ok = 0;
    st[m] = s;
    contiguous[p] = (char)ok;
  }
  if (bad) { free(start); free(contiguous); return 1; }
  long nblk = (m + SETS_PER_ITEM - 1) / SETS_PER_ITEM;
  #pragma omp parallel
  {
    float* dist = (float*)malloc(sizeof(float) * (size_t)(s > 0 ? s : 1));
    float* acck = (float*)malloc(sizeof(float) * (size_t)d * 2);
    float* accv = acck + d;
    #pragma omp for schedule(dynamic, 1)
    for (long it = 0; it < bh * nblk; ++it) {
      long p = it / nblk, m0 = (it % nblk) * SETS_PER_ITEM;
      if (!contiguous[p]) continue;
      long m1 = m0 + SETS_PER_ITEM < m ? m0 + SETS_PER_ITEM : m;
      const float* kh = keys + p * s * d;
      const float* vh = vals + p * s * d;
      const long* st = start + p * (m + 1);
      for (long j = m0; j < m1; ++j) {
        long r0 = st[j], r1 = st[j + 1], n = r1 - r0;
        const float* kp = kh + pivots[p * m + j] * d;
        double dsum = 0.0;
        for (long i = 0; i < n; ++i) { dist[i] = sqrtf(sqdist(kh + (r0 + i) * d, kp, d)); dsum += dist[i]; }
        double sigma = dsum / (double)n;
        double denom = 2.0 * sigma * sigma + eps;
        double wsum = 0.0;
        for (long c = 0; c < d; ++c) { acck[c] = 0.f; accv[c] = 0.f; }
        for (long i = 0; i < n; ++i) {
          double di = dist[i];
          float w = (float)exp(-(di * di) / denom);
          wsum += w;
          const float* kr = kh + (r0 + i) * d;
          const float* vr = vh + (r0 + i) * d;
          #pragma omp simd
          for (long c = 0; c < d; ++c) { acck[c] += w * kr[c]; accv[c] += w * vr[c]; }
        }
        float inv = (float)(1.0 / wsum);
        float* ok_ = mk + (p * m + j) * d;
        float* ov = mv + (p * m + j) * d;
        #pragma omp simd
        for (long c = 0; c < d; ++c) { ok_[c] = acck[c] * inv; ov[c] = accv[c] * inv; }
      }
    }
    free(dist); free(acck);
  }
  /* generic fallback for heads whose sets are not consecutive runs */
  for (long p = 0; p < bh; ++p) {
    if (contiguous[p]) continue;
    const float* kh = keys + p * s * d;
    const float* vh = vals + p * s * d;
    const long* sid = set_ids + p * s;
    double* sig = (double*)calloc((size_t)(2 * m), sizeof(double));
    double* cnt = sig + m;
    float* dist = (float*)malloc(sizeof(float) * (size_t)(s > 0 ? s : 1));
    double* den = (double*)calloc((size_t)m, sizeof(double));
    float* ok_ = mk + p * m * d;
    float* ov = mv + p * m * d;
    memset(ok_, 0, sizeof(float) * (size_t)(m * d));
    memset(ov, 0, sizeof(float) * (size_t)(m * d));
    for (long i = 0; i < s; ++i) {
      long j = sid[i];
      dist[i] = sqrtf(sqdist(kh + i * d, kh + pivots[p * m + j] * d, d));
      sig[j] += dist[i]; cnt[j] += 1.0;
    }
    for (long j = 0; j < m; ++j) sig[j] = sig[j] / cnt[j];
    for (long i = 0; i < s; ++i) {
      long j = sid[i];
      double di = dist[i];
      float w = (float)exp(-(di * di) / (2.0 * sig[j] * sig[j] + eps));
      den[j] += w;
      for (long c = 0; c < d; ++c) { ok_[j * d + c] += w * kh[i * d + c]; ov[j * d + c] += w * vh[i * d + c]; }
    }
    for (long j = 0; j < m; ++j) {
      float inv = (float)(1.0 / den[j]);
      for (long c = 0; c < d; ++c) { ok_[j * d + c] *= inv; ov[j * d + c] *= inv; }
    }
    free(sig); free(dist); free(den);
  }
  free(start); free(contiguous);
  return 0;
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={
        "kv_merge": (
            "int",
            ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long", "double"],
        )
    },
)


class ModelNew(nn.Module):
    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, keys: torch.Tensor, values: torch.Tensor, set_ids: torch.Tensor, pivots: torch.Tensor):
        keys = keys.contiguous()
        values = values.contiguous()
        set_ids = set_ids.contiguous()
        pivots = pivots.contiguous()
        b, h, s, d = keys.shape
        m = pivots.shape[-1]
        mk = torch.empty(b, h, m, d, dtype=torch.float32)
        mv = torch.empty(b, h, m, d, dtype=torch.float32)
        rc = _LIB.kv_merge(
            keys.data_ptr(),
            values.data_ptr(),
            set_ids.data_ptr(),
            pivots.data_ptr(),
            mk.data_ptr(),
            mv.data_ptr(),
            b * h,
            s,
            d,
            m,
            self.eps,
        )
        if rc != 0:
            raise IndexError("set_ids or pivots out of range")
        return mk, mv
