/* karena/scores.h: logits^T tiles of a skinny attention-score GEMM (keys x a packed query panel).

   Shared by h2o_heavy_hitter_scores and windowkv_scores: per head, up to NB = 64 queries (pre-scaled)
   are packed k-major as a panel bp[d][NB] (16 nv columns used, nv = 1..4); scores_rows streams key
   rows keys[j][0:d] (row stride d) as the broadcast operand of a kv_f register tile and writes the
   transposed logits buf[j][0:16 nv] (row stride NB), so every key is read once and never repacked.
   Register tiles by path (karena/vmath.h's KV_VW): AVX-512 12 keys x 16..32 or 6 x 48..64 columns
   (<= 24 of 32 zmm); AVX2 and generic 6 keys x 2 vectors per column chunk (12 of 16 registers).
   exp_neg: exp for the max-subtracted logits, exactly 0 below -87 (-inf -> 0). causal_block_mass:
   the whole step of a query block (pack, scores, causal mask, column softmax in buf, each key's
   probability mass added to a per-key total). */
#ifndef KARENA_SCORES_H
#define KARENA_SCORES_H

#include <math.h>
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
static inline void scores_rows(const float* keys, long d, const float* bp, int nv, long j0, long j1, float* buf) {
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

/* The softmax mass that a block of nq <= NB queries gives each key, added to tok[j] for j < jn.
   Queries qh[0:nq][0:d] (row stride d) are scaled by `scale` into the panel bp[d][NB]; query c sits
   at position qpos + c and sees keys 0..qpos + c of kh (causal), so the block's logits cover keys
   [0, qpos + nq) in buf (>= (qpos + nq) NB floats). Padded columns c >= nq weigh 0 (il = 0). */
static inline void causal_block_mass(const float* qh, long nq, long d, float scale, const float* kh, long qpos,
                                     long jn, float* bp, float* buf, float* tok) {
  const int nv = (int)((nq + 15) / 16), cols = 16 * nv;
  for (long kk = 0; kk < d; ++kk)
    for (int c = 0; c < NB; ++c) bp[kk * NB + c] = c < nq ? qh[c * d + kk] * scale : 0.f;
  const long kmax = qpos + nq; /* the block's last query sees keys < kmax */
  scores_rows(kh, d, bp, nv, 0, kmax, buf);
  float m[NB], l[NB], il[NB];
  for (int c = 0; c < cols; ++c) { m[c] = -INFINITY; l[c] = 0.f; }
  for (long j = qpos; j < kmax; ++j) /* diagonal band and padded query columns */
    for (int c = 0; c < cols; ++c)
      if (c >= nq || j > qpos + c) buf[j * NB + c] = -INFINITY;
  for (long j = 0; j < kmax; ++j) {
    const float* r = buf + j * NB;
    #pragma omp simd
    for (int c = 0; c < cols; ++c) m[c] = r[c] > m[c] ? r[c] : m[c];
  }
  for (int c = (int)nq; c < cols; ++c) m[c] = 0.f; /* padded columns: exp(-inf - 0) = 0 */
  for (long j = 0; j < kmax; ++j) {
    float* r = buf + j * NB;
    for (int c = 0; c < cols; c += KV_VW) {
      const kv_f e = exp_neg(kv_load(r + c) - kv_load(m + c));
      kv_store(r + c, e);
      kv_store(l + c, kv_load(l + c) + e);
    }
  }
  for (int c = 0; c < cols; ++c) il[c] = c < nq ? 1.0f / l[c] : 0.f;
  for (long j = 0; j < jn; ++j) {
    const float* r = buf + j * NB;
    float acc = 0.f;
    #pragma omp simd reduction(+:acc)
    for (int c = 0; c < cols; ++c) acc += r[c] * il[c];
    tok[j] += acc;
  }
}

#endif /* KARENA_SCORES_H */
