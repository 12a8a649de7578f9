"""GQA decode attention in C/OpenMP: one streaming pass over the KV cache per KV head.

Each work item is (batch, kv_head, sequence split). It keeps ``group`` online-softmax states
(running max, running sum, accumulator) -- one per query head of the group -- so every K and V row
is read from memory once and used ``group`` times. Scores for a tile of 32 keys are computed,
the tile max folded into the running max (one rescale per tile, not per key), and the weights
(exp2 of pre-scaled logits, vectorized polynomial) applied to V while the tile is still in L1.
When (batch x kv_heads) is too small to feed all cores, the sequence is split (FlashDecoding's
split-K) and the partial (max, sum, acc) triples are merged at the end.
"""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

typedef float v16 __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

static inline v16 vld(const float* p) { v16 v; memcpy(&v, p, sizeof v); return v; }
static inline void vst(float* p, v16 v) { memcpy(p, &v, sizeof v); }
static inline v16 vsel(v16i m, v16 a, v16 b) { return (v16)((m & (v16i)a) | (~m & (v16i)b)); }
static inline float vhsum(v16 v) {
  v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
       + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}
/* 2^x for x <= 0 (clamped to [-126, 0]); degree-8 Taylor of 2^f on |f| <= 0.5: rel. error < 1e-7. */
static inline v16 vexp2(v16 x) {
  v16 lo = (v16){} - 126.0f, hi = (v16){};
  x = vsel(x > lo, x, lo);
  x = vsel(x < hi, x, hi);
  v16 n = (x + 12582912.0f) - 12582912.0f;
  v16 f = x - n;
  v16 p = (v16){} + 1.3215486790144307e-06f;
  p = p * f + 1.525273380405984e-05f;
  p = p * f + 1.5403530393381606e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.618129107628477e-03f;
  p = p * f + 5.550410866482158e-02f;
  p = p * f + 2.402265069591007e-01f;
  p = p * f + 6.931471805599453e-01f;
  p = p * f + 1.0f;
  v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
  return p * (v16)e;
}

#define TK 32

/* dot(a, b) over d elements, a zero-padded to a multiple of 16, b read only up to d. */
static inline float dot(const float* a, const float* b, long d) {
  v16 s0 = (v16){}, s1 = (v16){};
  long i = 0;
  for (; i + 32 <= d; i += 32) { s0 += vld(a + i) * vld(b + i); s1 += vld(a + i + 16) * vld(b + i + 16); }
  for (; i + 16 <= d; i += 16) s0 += vld(a + i) * vld(b + i);
  float s = vhsum(s0 + s1);
  for (; i < d; i++) s += a[i] * b[i];
  return s;
}

/* acc[0:d] = acc * alpha */
static inline void scale_row(float* acc, float alpha, long d) {
  for (long i = 0; i < d; i++) acc[i] *= alpha;
}

/* One (batch, kv head) over keys [s0, s1): G online-softmax states m, l, acc (G x Dp). */
static void decode_range(const float* qs, const float* kh, const float* vh, long s0, long s1,
                         long D, long Dp, long G, float* m, float* l, float* acc, float* sc) {
  for (long g = 0; g < G; g++) { m[g] = -INFINITY; l[g] = 0.f; }
  memset(acc, 0, sizeof(float) * G * Dp);
  for (long j0 = s0; j0 < s1; j0 += TK) {
    long n = s1 - j0 < TK ? s1 - j0 : TK;
    for (long j = 0; j < n; j++) {
      const float* kr = kh + (j0 + j) * D;
      for (long g = 0; g < G; g++) sc[g * TK + j] = dot(qs + g * Dp, kr, D);
    }
    for (long g = 0; g < G; g++) {
      float* s = sc + g * TK;
      for (long j = n; j < TK; j++) s[j] = -INFINITY;
      float mt = s[0];
      for (long j = 1; j < n; j++) mt = s[j] > mt ? s[j] : mt;
      if (mt > m[g]) {
        float alpha = exp2f(m[g] - mt); /* 0 when m was -inf */
        l[g] *= alpha;
        scale_row(acc + g * Dp, alpha, D);
        m[g] = mt;
      }
      v16 mv = (v16){} + m[g];
      v16 p0 = vexp2(vld(s) - mv), p1 = vexp2(vld(s + 16) - mv);
      vst(s, p0);
      vst(s + 16, p1);
      for (long j = n; j < TK; j++) s[j] = 0.f;
      l[g] += vhsum(vld(s) + vld(s + 16));
    }
    /* acc[g] += sum_j p[g][j] * v[j]: keep a 64-wide accumulator slice in registers over the tile. */
    long d = 0;
    for (; d + 64 <= D; d += 64) {
      for (long g = 0; g < G; g++) {
        float* a = acc + g * Dp + d;
        const float* p = sc + g * TK;
        v16 a0 = vld(a), a1 = vld(a + 16), a2 = vld(a + 32), a3 = vld(a + 48);
        for (long j = 0; j < n; j++) {
          const float* vr = vh + (j0 + j) * D + d;
          v16 pj = (v16){} + p[j];
          a0 += pj * vld(vr); a1 += pj * vld(vr + 16); a2 += pj * vld(vr + 32); a3 += pj * vld(vr + 48);
        }
        vst(a, a0); vst(a + 16, a1); vst(a + 32, a2); vst(a + 48, a3);
      }
    }
    for (; d + 16 <= D; d += 16) {
      for (long g = 0; g < G; g++) {
        float* a = acc + g * Dp + d;
        const float* p = sc + g * TK;
        v16 a0 = vld(a);
        for (long j = 0; j < n; j++) a0 += ((v16){} + p[j]) * vld(vh + (j0 + j) * D + d);
        vst(a, a0);
      }
    }
    for (; d < D; d++) {
      for (long g = 0; g < G; g++) {
        const float* p = sc + g * TK;
        float a = acc[g * Dp + d];
        for (long j = 0; j < n; j++) a += p[j] * vh[(j0 + j) * D + d];
        acc[g * Dp + d] = a;
      }
    }
  }
}

/* q [B, Hkv*G, D], k/v [B, Hkv, S, D], out [B, Hkv*G, D]; qscale = log2(e) / sqrt(D). */
void gqa_decode(const float* q, const float* k, const float* v, float* out, long B, long Hkv, long G,
                long S, long D, float qscale) {
  int nthr = omp_get_max_threads();
  long pairs = B * Hkv;
  long nsplit = 1;
  if (pairs < 4 * (long)nthr) {
    nsplit = (4 * (long)nthr + pairs - 1) / pairs;
    long most = (S + 255) / 256; /* keep >= 256 keys per split */
    if (nsplit > most) nsplit = most;
    if (nsplit < 1) nsplit = 1;
  }
  long Dp = (D + 15) & ~15L;
  long items = pairs * nsplit;
  float* pm = (float*)malloc(sizeof(float) * items * G);
  float* pl = (float*)malloc(sizeof(float) * items * G);
  float* pacc = (float*)malloc(sizeof(float) * items * G * Dp);
  #pragma omp parallel
  {
    float* qs = (float*)aligned_alloc(64, sizeof(float) * G * Dp);
    float* sc = (float*)aligned_alloc(64, sizeof(float) * G * TK);
    #pragma omp for schedule(static)
    for (long it = 0; it < items; it++) {
      long pair = it / nsplit, sp = it % nsplit;
      long b = pair / Hkv, h = pair % Hkv;
      long s0 = S * sp / nsplit, s1 = S * (sp + 1) / nsplit;
      memset(qs, 0, sizeof(float) * G * Dp);
      for (long g = 0; g < G; g++)
        for (long d = 0; d < D; d++) qs[g * Dp + d] = q[((b * Hkv + h) * G + g) * D + d] * qscale;
      const float* kh = k + (b * Hkv + h) * S * D;
      const float* vh = v + (b * Hkv + h) * S * D;
      decode_range(qs, kh, vh, s0, s1, D, Dp, G, pm + it * G, pl + it * G, pacc + it * G * Dp, sc);
    }
    free(qs);
    free(sc);
  }
  /* merge the splits of each (b, kv head, g) */
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < pairs * G; r++) {
    long pair = r / G, g = r % G;
    float M = -INFINITY;
    for (long sp = 0; sp < nsplit; sp++) {
      float mm = pm[(pair * nsplit + sp) * G + g];
      M = mm > M ? mm : M;
    }
    float L = 0.f;
    float* o = out + r * D;
    for (long d = 0; d < D; d++) o[d] = 0.f;
    for (long sp = 0; sp < nsplit; sp++) {
      long it = pair * nsplit + sp;
      float mm = pm[it * G + g];
      if (mm == -INFINITY) continue; /* empty split */
      float w = exp2f(mm - M);
      L += w * pl[it * G + g];
      const float* a = pacc + (it * G + g) * Dp;
      for (long d = 0; d < D; d++) o[d] += w * a[d];
    }
    float inv = 1.f / L;
    for (long d = 0; d < D; d++) o[d] *= inv;
  }
  free(pm);
  free(pl);
  free(pacc);
}
"""

_ARGS = ["ptr"] * 4 + ["long"] * 5 + ["float"]
_LIB = load_library(_SRC, functions={"gqa_decode": (None, _ARGS)})


class ModelNew(nn.Module):
    """Fused GQA decode attention (same interface as the task's Model)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        b, n_q, d = q.shape
        n_kv, s = k.shape[1], k.shape[2]
        out = torch.empty_like(q)
        qscale = math.log2(math.e) / math.sqrt(d)
        _LIB.gqa_decode(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), b, n_kv, n_q // n_kv, s, d, qscale
        )
        return out
