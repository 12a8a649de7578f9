"""Paged GQA decode attention in C/OpenMP: split-K FlashDecoding through the block table.

Work items are (sequence, KV head, split of the context). Each walks its token range, turns
(page, slot) into row offsets through the block table 32 tokens at a time, and runs one fused
tile step for all ``group`` query heads of the KV head: scores, online softmax in the exp2
domain, weighted sum of V -- each K/V row is read once. Pages are 16+ tokens of one head, i.e.
contiguous rows, so the gather costs little (the vAttention observation). Splits of long
sequences keep both cores busy for batch 1; partial states are merged at the end.
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
static inline v16 vbc(float x) { return (v16){} + x; }
static inline v16 vsel(v16i m, v16 a, v16 b) { return (v16)((m & (v16i)a) | (~m & (v16i)b)); }
static inline float vhsum(v16 v) {
  v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
       + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}
static inline float vhmax(v16 v) {
  float m = v[0];
  for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m;
  return m;
}
/* 2^x for x <= 0 (clamped to [-126, 0]); degree-8 Taylor of 2^f on |f| <= 0.5: rel. error < 1e-7. */
static inline v16 vexp2(v16 x) {
  v16 lo = vbc(-126.0f), hi = (v16){};
  x = vsel(x > lo, x, lo);
  x = vsel(x < hi, x, hi);
  v16 n = (x + 12582912.0f) - 12582912.0f;
  v16 f = x - n;
  v16 p = vbc(1.3215486790144307e-06f);
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


/* ---- decode: G query rows against tiles of up to TK gathered key rows ---- */
#define TK 32

/* dot(a, b) over d elements; a zero-padded to a multiple of 16, b read only up to d. */
static inline float dot(const float* a, const float* b, long d) {
  v16 s0 = {}, s1 = {};
  long i = 0;
  for (; i + 32 <= d; i += 32) { s0 += vld(a + i) * vld(b + i); s1 += vld(a + i + 16) * vld(b + i + 16); }
  for (; i + 16 <= d; i += 16) s0 += vld(a + i) * vld(b + i);
  float s = vhsum(s0 + s1);
  for (; i < d; i++) s += a[i] * b[i];
  return s;
}

/* One online-softmax step for G query rows qs[G][Dp] (pre-scaled by log2(e)/sqrt(D)) over n <= TK
   keys whose K/V rows are kb + off[j] / vb + off[j]. State: m[G], l[G], acc[G][Dp]; sc: G*TK scratch. */
static void dec_tile(const float* qs, const float* kb, const float* vb, const long* off, long n, long D,
                     long Dp, long G, float* m, float* l, float* acc, float* sc) {
  /* Gathered rows defeat the hardware prefetcher: request every line of the tile's K and V rows up
     front so the misses overlap instead of being paid one row at a time. */
  for (long j = 0; j < n; j++)
    for (long d = 0; d < D; d += 16) { __builtin_prefetch(kb + off[j] + d); __builtin_prefetch(vb + off[j] + d); }
  for (long j = 0; j < n; j++) {
    const float* kr = kb + off[j];
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
      float* a = acc + g * Dp;
      for (long d = 0; d < D; d++) a[d] *= alpha;
      m[g] = mt;
    }
    v16 mv = vbc(m[g]);
    vst(s, vexp2(vld(s) - mv));
    vst(s + 16, vexp2(vld(s + 16) - mv));
    for (long j = n; j < TK; j++) s[j] = 0.f;
    l[g] += vhsum(vld(s) + vld(s + 16));
  }
  /* acc[g] += sum_j p[g][j] * v_j with a 64-wide accumulator slice held in registers */
  long d = 0;
  for (; d + 64 <= D; d += 64) {
    for (long g = 0; g < G; g++) {
      float* a = acc + g * Dp + d;
      const float* p = sc + g * TK;
      v16 a0 = vld(a), a1 = vld(a + 16), a2 = vld(a + 32), a3 = vld(a + 48);
      for (long j = 0; j < n; j++) {
        const float* vr = vb + off[j] + d;
        v16 pj = vbc(p[j]);
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
      for (long j = 0; j < n; j++) a0 += vbc(p[j]) * vld(vb + off[j] + d);
      vst(a, a0);
    }
  }
  for (; d < D; d++) {
    for (long g = 0; g < G; g++) {
      const float* p = sc + g * TK;
      float a = acc[g * Dp + d];
      for (long j = 0; j < n; j++) a += p[j] * vb[off[j] + d];
      acc[g * Dp + d] = a;
    }
  }
}

static void dec_init(long G, long Dp, float* m, float* l, float* acc) {
  for (long g = 0; g < G; g++) { m[g] = -INFINITY; l[g] = 0.f; }
  memset(acc, 0, sizeof(float) * G * Dp);
}

/* Merge nsplit partial states (m, l, acc) of G rows into out rows o[g * ostride + 0:D]. */
static void dec_merge(long nsplit, long G, long D, long Dp, const float* pm, const float* pl,
                      const float* pacc, long g, float* o) {
  float M = -INFINITY;
  for (long sp = 0; sp < nsplit; sp++) M = pm[sp * G + g] > M ? pm[sp * G + g] : M;
  float L = 0.f;
  for (long d = 0; d < D; d++) o[d] = 0.f;
  for (long sp = 0; sp < nsplit; sp++) {
    float mm = pm[sp * G + g];
    if (mm == -INFINITY) continue; /* split without keys */
    float w = exp2f(mm - M);
    L += w * pl[sp * G + g];
    const float* a = pacc + (sp * G + g) * Dp;
    for (long d = 0; d < D; d++) o[d] += w * a[d];
  }
  float inv = 1.f / L;
  for (long d = 0; d < D; d++) o[d] *= inv;
}

/* Number of sequence splits so that pairs * nsplit work items keep nthr threads busy. */
static long choose_splits(long pairs, long S, long min_keys) {
  long nthr = omp_get_max_threads(), nsplit = 1;
  if (pairs < 4 * nthr) {
    nsplit = (4 * nthr + pairs - 1) / pairs;
    long most = (S + min_keys - 1) / min_keys;
    if (nsplit > most) nsplit = most;
    if (nsplit < 1) nsplit = 1;
  }
  return nsplit;
}

/* q: [B, Hkv*G, D]; kc, vc: [NB, BS, Hkv, D]; table: int32 [B, MB]; lens: int32 [B]; out like q.
   qscale = log2(e) / sqrt(D). */
void paged_attn(const float* q, const float* kc, const float* vc, const int* table, const int* lens, float* out,
                long B, long Hkv, long G, long D, long BS, long MB, long NB, float qscale) {
  long Dp = (D + 15) & ~15L, pairs = B * Hkv, maxlen = 1;
  for (long b = 0; b < B; b++) maxlen = lens[b] > maxlen ? lens[b] : maxlen;
  long nsplit = choose_splits(pairs, maxlen, 256), items = pairs * nsplit;
  float* pm = (float*)malloc(sizeof(float) * items * G);
  float* pl = (float*)malloc(sizeof(float) * items * G);
  float* pacc = (float*)malloc(sizeof(float) * items * G * Dp);
  long row = Hkv * D; /* stride between consecutive slots of a page */
  #pragma omp parallel
  {
    float* qs = (float*)aligned_alloc(64, sizeof(float) * G * Dp);
    float* sc = (float*)aligned_alloc(64, sizeof(float) * G * TK);
    long offs[TK];
    #pragma omp for schedule(dynamic, 1)
    for (long it = 0; it < items; it++) {
      long pair = it / nsplit, sp = it % nsplit, b = pair / Hkv, h = pair % Hkv;
      long n = lens[b] < 0 ? 0 : lens[b];
      if (n > MB * BS) n = MB * BS;
      long s0 = n * sp / nsplit, s1 = n * (sp + 1) / nsplit;
      memset(qs, 0, sizeof(float) * G * Dp);
      for (long g = 0; g < G; g++)
        for (long d = 0; d < D; d++) qs[g * Dp + d] = q[((b * Hkv + h) * G + g) * D + d] * qscale;
      float *m = pm + it * G, *l = pl + it * G, *acc = pacc + it * G * Dp;
      dec_init(G, Dp, m, l, acc);
      const float *kb = kc + h * D, *vb = vc + h * D;
      const int* tb = table + b * MB;
      long cnt = 0;
      for (long p = s0; p < s1; p++) {
        long page = tb[p / BS];
        if (page < 0 || page >= NB) continue;
        offs[cnt++] = (page * BS + p % BS) * row;
        if (cnt == TK) { dec_tile(qs, kb, vb, offs, cnt, D, Dp, G, m, l, acc, sc); cnt = 0; }
      }
      if (cnt) dec_tile(qs, kb, vb, offs, cnt, D, Dp, G, m, l, acc, sc);
    }
    free(qs);
    free(sc);
  }
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < pairs * G; r++) {
    long pair = r / G, g = r % G;
    dec_merge(nsplit, G, D, Dp, pm + pair * nsplit * G, pl + pair * nsplit * G, pacc + pair * nsplit * G * Dp, g,
              out + r * D);
  }
  free(pm);
  free(pl);
  free(pacc);
}
"""

_ARGS = ["ptr"] * 6 + ["long"] * 7 + ["float"]
_LIB = load_library(_SRC, functions={"paged_attn": (None, _ARGS)})


class ModelNew(nn.Module):
    """Fused paged decode attention (same interface as the task's Model)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_table: torch.Tensor,
        context_lens: torch.Tensor,
    ) -> torch.Tensor:
        q, k_cache, v_cache = q.contiguous(), k_cache.contiguous(), v_cache.contiguous()
        table = block_table.to(torch.int32).contiguous()
        lens = context_lens.to(torch.int32).contiguous()
        b, n_q, d = q.shape
        num_blocks, block_size, n_kv = k_cache.shape[0], k_cache.shape[1], k_cache.shape[2]
        out = torch.empty_like(q)
        qscale = math.log2(math.e) / math.sqrt(d)
        _LIB.paged_attn(
            q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), table.data_ptr(), lens.data_ptr(), out.data_ptr(),
            b, n_kv, n_q // n_kv, d, block_size, table.shape[1], num_blocks, qscale,
        )  # fmt: skip
        return out
