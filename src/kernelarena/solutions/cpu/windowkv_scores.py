"""WindowKV window scores (C/OpenMP): fused skinny attention-score GEMM, softmax and pooling.

Per (batch, head), the observation queries (pre-scaled by 1/sqrt(d)) are packed once as a
[head_dim][16..64] panel; the key cache is streamed row by row as the broadcast operand of an
AVX-512 register tile (12 keys x 32 queries, or 6 x 64), so keys are read from memory exactly once
and never repacked (software prefetch one tile ahead keeps the 12 row streams in flight; the op
reads 4 bytes of keys per 16 FLOPs, so it runs at memory bandwidth). The transposed logits [keys][queries] stay in an L2-resident per-thread
buffer, where every softmax step is a vertical vector op across the queries: a running max, one
vectorized exp (range reduction + polynomial + ``vscalefps``) that also accumulates the
denominators, then each key's probability mass is a dot product with 1/denominator and is added
straight into its window's score. The [obs, seq] probabilities never reach memory.
"""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define NB 64   /* queries per block (panel width) */

#ifdef __AVX512F__
/* exp(x) for x <= 0 (and -inf -> 0): |rel err| ~ 2 ulp */
static inline __m512 exp512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.0f);
  __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(x, lo);
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps((__mmask16)~under, _mm512_scalef_ps(p, n));
}

/* c[i][0:16*NV] = sum_k a_i[k] * bp[k][0:16*NV] for MRR rows */
#define DEF_MICRO(MRR, NV) \
static void micro_##MRR##_##NV(const float* a, long lda, const float* bp, long kdim, float* c) { \
  __m512 acc[MRR][NV]; \
  for (int i = 0; i < MRR; ++i) for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps(); \
  for (long k = 0; k < kdim; ++k) { \
    __m512 b[NV]; \
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_ps(bp + k * NB + 16 * v); \
    if ((k & 15) == 0) /* keys stream from DRAM: fetch the next tile's rows a tile ahead */ \
      for (int i = 0; i < MRR; ++i) _mm_prefetch((const char*)(a + (i + MRR) * lda + k), _MM_HINT_T0); \
    for (int i = 0; i < MRR; ++i) { \
      __m512 x = _mm512_set1_ps(a[i * lda + k]); \
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(x, b[v], acc[i][v]); \
    } \
  } \
  for (int i = 0; i < MRR; ++i) for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + i * NB + 16 * v, acc[i][v]); \
}
DEF_MICRO(12, 1) DEF_MICRO(12, 2) DEF_MICRO(6, 3) DEF_MICRO(6, 4)
#endif

/* logits^T rows [j0, j1) of one head into buf[j][0:NB] (rows of keys a, panel bp) */
static void scores_rows(const float* keys, long d, const float* bp, int nv, long j0, long j1, float* buf) {
  long j = j0;
#ifdef __AVX512F__
  int mr = nv <= 2 ? 12 : 6;
  for (; j + mr <= j1; j += mr) {
    const float* a = keys + j * d;
    float* c = buf + j * NB;
    switch (nv) {
      case 1: micro_12_1(a, d, bp, d, c); break;
      case 2: micro_12_2(a, d, bp, d, c); break;
      case 3: micro_6_3(a, d, bp, d, c); break;
      default: micro_6_4(a, d, bp, d, c); break;
    }
  }
#endif
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

void windowkv(const float* q, const float* k, float* out, long bh, long s, long w, long d, long win, float scale) {
  long pre = s - w, nwin = (pre + win - 1) / win;
  #pragma omp parallel
  {
    float* bp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(d * NB));
    float* buf = (float*)aligned_alloc(64, sizeof(float) * (size_t)(s * NB));
    float* tok = (float*)malloc(sizeof(float) * (size_t)(pre > 0 ? pre : 1));
    #pragma omp for schedule(dynamic, 1)
    for (long p = 0; p < bh; ++p) {
      const float* qh = q + p * w * d;
      const float* kh = k + p * s * d;
      for (long j = 0; j < pre; ++j) tok[j] = 0.f;
      for (long q0 = 0; q0 < w; q0 += NB) {
        long nq = w - q0 < NB ? w - q0 : NB;
        int nv = (int)((nq + 15) / 16), cols = 16 * nv;
        for (long kk = 0; kk < d; ++kk)
          for (int c = 0; c < NB; ++c) bp[kk * NB + c] = c < nq ? qh[(q0 + c) * d + kk] * scale : 0.f;
        long kmax = pre + q0 + nq;   /* causal: the last query of the block sees keys < kmax */
        scores_rows(kh, d, bp, nv, 0, kmax, buf);
        /* causal mask inside the observation window and padded query columns */
        float m[NB], l[NB], il[NB];
        for (int c = 0; c < cols; ++c) { m[c] = -INFINITY; l[c] = 0.f; }
        for (long j = pre; j < kmax; ++j)
          for (int c = 0; c < cols; ++c)
            if (c >= nq || j > pre + q0 + c) buf[j * NB + c] = -INFINITY;
        for (long j = 0; j < kmax; ++j) {
          const float* r = buf + j * NB;
          #pragma omp simd
          for (int c = 0; c < cols; ++c) m[c] = r[c] > m[c] ? r[c] : m[c];
        }
        for (int c = (int)nq; c < cols; ++c) m[c] = 0.f;   /* padded columns: exp(-inf - 0) = 0 */
#ifdef __AVX512F__
        for (long j = 0; j < kmax; ++j) {
          float* r = buf + j * NB;
          for (int v = 0; v < nv; ++v) {
            __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(r + 16 * v), _mm512_loadu_ps(m + 16 * v)));
            _mm512_storeu_ps(r + 16 * v, e);
            _mm512_storeu_ps(l + 16 * v, _mm512_add_ps(_mm512_loadu_ps(l + 16 * v), e));
          }
        }
#else
        for (long j = 0; j < kmax; ++j) {
          float* r = buf + j * NB;
          for (int c = 0; c < cols; ++c) { float e = c < nq ? expf(r[c] - m[c]) : 0.f; r[c] = e; l[c] += e; }
        }
#endif
        for (int c = 0; c < cols; ++c) il[c] = c < nq ? 1.0f / l[c] : 0.f;
        for (long j = 0; j < pre; ++j) {
          const float* r = buf + j * NB;
          float acc = 0.f;
          #pragma omp simd reduction(+:acc)
          for (int c = 0; c < cols; ++c) acc += r[c] * il[c];
          tok[j] += acc;
        }
      }
      float* o = out + p * nwin;
      for (long wi = 0; wi < nwin; ++wi) {
        long j0 = wi * win, j1 = j0 + win < pre ? j0 + win : pre;
        float acc = 0.f;
        for (long j = j0; j < j1; ++j) acc += tok[j];
        o[wi] = acc;
      }
    }
    free(bp); free(buf); free(tok);
  }
}
"""

_LIB = load_library(
    _SRC,
    functions={"windowkv": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, q_obs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q_obs = q_obs.contiguous()
        keys = keys.contiguous()
        b, h, s, d = keys.shape
        w = q_obs.shape[-2]
        nwin = -(-(s - w) // self.window)
        out = torch.empty(b, h, nwin, dtype=torch.float32)
        _LIB.windowkv(
            q_obs.data_ptr(), keys.data_ptr(), out.data_ptr(), b * h, s, w, d, self.window, 1.0 / math.sqrt(d)
        )
        return out
