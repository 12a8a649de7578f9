"""H2O accumulated attention scores (C/OpenMP): causal blocks only, probabilities never stored.

Per (batch, head) and block of up to 64 queries (pre-scaled by 1/sqrt(d), packed once as a
[head_dim][64] panel), the keys the block can see -- the causal triangle only, half of what eager
PyTorch computes and then masks -- are streamed as the broadcast operand of a register tile
(AVX-512: 6 keys x 64 queries, 12 x 16..32 for narrow blocks; AVX2 and generic: 6 keys x 2 vectors
per column chunk; ``karena/vmath.h`` vectors, one source for every path), with a software prefetch one tile ahead.
The transposed logits [keys][queries] stay in an L2-resident per-thread buffer, so each softmax
step is a vertical vector op across the block's queries: running max, a vectorized exp
(vmath ``kv_exp_fast``) that also accumulates the denominators, then every key's share of
the block's probability mass is a dot product with 1/denominator, added into its score. The
[q_len, seq] logits and probabilities never reach memory.
"""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "karena/vmath.h"

#define NB 64   /* queries per block (panel width) */

/* c[i][0:NV*KV_VW] = sum_k a_i[k] * bp[k][0:NV*KV_VW] for MRR rows (bp, c: row stride NB) */
#define DEF_MICRO(MRR, NV) \
static void micro_##MRR##_##NV(const float* a, long lda, const float* bp, long kdim, float* c) { \
  kv_f acc[MRR][NV]; \
  for (int i = 0; i < MRR; ++i) for (int v = 0; v < NV; ++v) acc[i][v] = kv_set1(0.0f); \
  for (long k = 0; k < kdim; ++k) { \
    kv_f b[NV]; \
    for (int v = 0; v < NV; ++v) b[v] = kv_load(bp + k * NB + KV_VW * v); \
    if ((k & 15) == 0) /* keys stream from DRAM: fetch the next tile's rows a tile ahead */ \
      for (int i = 0; i < MRR; ++i) __builtin_prefetch(a + (i + MRR) * lda + k, 0, 3); \
    for (int i = 0; i < MRR; ++i) { \
      const kv_f x = kv_set1(a[i * lda + k]); \
      for (int v = 0; v < NV; ++v) acc[i][v] = x * b[v] + acc[i][v]; \
    } \
  } \
  for (int i = 0; i < MRR; ++i) for (int v = 0; v < NV; ++v) kv_store(c + i * NB + KV_VW * v, acc[i][v]); \
}
#if KV_VW == 16
/* 16 columns per vector: the whole 16..64-column block in one tile (<= 24 accumulators of 32 zmm) */
DEF_MICRO(12, 1) DEF_MICRO(12, 2) DEF_MICRO(6, 3) DEF_MICRO(6, 4)
#define MR_FOR(nv) ((nv) <= 2 ? 12 : 6)
#else
/* 16 ymm / xmm registers: 6 rows x 2 vectors (12 accumulators), column chunks of 2 * KV_VW */
DEF_MICRO(6, 2)
#define MR_FOR(nv) 6
#endif

/* exp(x) for x <= 0, 0 below -87 (-inf -> 0) */
static inline kv_f exp_neg(kv_f x) { return kv_sel(x < -87.0f, kv_set1(0.0f), kv_exp_fast(x)); }

/* logits^T rows [j0, j1) of one head into buf[j][0:NB] (rows of keys a, panel bp) */
static void scores_rows(const float* keys, long d, const float* bp, int nv, long j0, long j1, float* buf) {
  long j = j0;
  const int mr = MR_FOR(nv);
  for (; j + mr <= j1; j += mr) {
    const float* a = keys + j * d;
    float* c = buf + j * NB;
#if KV_VW == 16
    switch (nv) {
      case 1: micro_12_1(a, d, bp, d, c); break;
      case 2: micro_12_2(a, d, bp, d, c); break;
      case 3: micro_6_3(a, d, bp, d, c); break;
      default: micro_6_4(a, d, bp, d, c); break;
    }
#else
    for (int c0 = 0; c0 < 16 * nv; c0 += 2 * KV_VW) micro_6_2(a, d, bp + c0, d, c + c0);
#endif
  }
  for (; j < j1; ++j) {
    float acc[NB];
    for (int c = 0; c < 16 * nv; ++c) acc[c] = 0.f;
    const float* a = keys + j * d;
    for (long k = 0; k < d; ++k) {
      float x = a[k];
      #pragma omp simd
      for (int c = 0; c < 16 * nv; ++c) acc[c] = fmaf(x, bp[k * NB + c], acc[c]);
    }
    memcpy(buf + j * NB, acc, sizeof(float) * 16 * (size_t)nv);
  }
}

void h2o_scores(const float* q, const float* k, float* out, long bh, long s, long ql, long d, float scale) {
  long base = s - ql;   /* position of the first query */
  #pragma omp parallel
  {
    float* bp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(d * NB));
    float* buf = (float*)aligned_alloc(64, sizeof(float) * (size_t)(s * NB));
    #pragma omp for schedule(dynamic, 1)
    for (long p = 0; p < bh; ++p) {
      const float* qh = q + p * ql * d;
      const float* kh = k + p * s * d;
      float* tok = out + p * s;
      for (long j = 0; j < s; ++j) tok[j] = 0.f;
      for (long q0 = 0; q0 < ql; q0 += NB) {
        long nq = ql - q0 < NB ? ql - q0 : NB;
        int nv = (int)((nq + 15) / 16), cols = 16 * nv;
        for (long kk = 0; kk < d; ++kk)
          for (int c = 0; c < NB; ++c) bp[kk * NB + c] = c < nq ? qh[(q0 + c) * d + kk] * scale : 0.f;
        long kmax = base + q0 + nq;   /* causal: the block's last query sees keys < kmax */
        scores_rows(kh, d, bp, nv, 0, kmax, buf);
        float m[NB], l[NB], il[NB];
        for (int c = 0; c < cols; ++c) { m[c] = -INFINITY; l[c] = 0.f; }
        for (long j = base + q0; j < kmax; ++j)   /* diagonal band and padded query columns */
          for (int c = 0; c < cols; ++c)
            if (c >= nq || j > base + q0 + c) buf[j * NB + c] = -INFINITY;
        for (long j = 0; j < kmax; ++j) {
          const float* r = buf + j * NB;
          #pragma omp simd
          for (int c = 0; c < cols; ++c) m[c] = r[c] > m[c] ? r[c] : m[c];
        }
        for (int c = (int)nq; c < cols; ++c) m[c] = 0.f;   /* padded columns: exp(-inf - 0) = 0 */
        for (long j = 0; j < kmax; ++j) {
          float* r = buf + j * NB;
          for (int c = 0; c < cols; c += KV_VW) {
            const kv_f e = exp_neg(kv_load(r + c) - kv_load(m + c));
            kv_store(r + c, e);
            kv_store(l + c, kv_load(l + c) + e);
          }
        }
        for (int c = 0; c < cols; ++c) il[c] = c < nq ? 1.0f / l[c] : 0.f;
        for (long j = 0; j < kmax; ++j) {
          const float* r = buf + j * NB;
          float acc = 0.f;
          #pragma omp simd reduction(+:acc)
          for (int c = 0; c < cols; ++c) acc += r[c] * il[c];
          tok[j] += acc;
        }
      }
    }
    free(bp); free(buf);
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"h2o_scores": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = q.contiguous()
        k = k.contiguous()
        b, h, s, d = k.shape
        ql = q.shape[-2]
        out = torch.empty(b, h, s, dtype=torch.float32)
        _LIB.h2o_scores(q.data_ptr(), k.data_ptr(), out.data_ptr(), b * h, s, ql, d, 1.0 / math.sqrt(d))
        return out
