/* karena/decode.h: split-K decode attention (FlashDecoding) over tiles of keys, on karena/vmath.h.

   Shared by decode_attention, gqa_decode_attention, paged_decode_attention and
   squeezed_centroid_attention: G query rows (the query heads of one KV head; G = 1 without GQA)
   are scored against tiles of up to KD_TK keys, folded into an online softmax (running max m,
   running sum l, accumulator acc; one rescale per tile, not per key) and the weights applied to V
   while the tile is still in L1, so every K and V row is read once. Work items are
   (row group, split of the keys); kd_splits picks the splits so that few row groups still feed
   every thread, and kd_merge_all combines the partial states at the end.

   Layout contracts:
   - query rows qs[G][Dp], pre-scaled by 1/sqrt(D) (kd_load_q), zero-padded to Dp = kd_pad(D)
     (a multiple of 16, so of KV_VW on every path); key/value rows are read only up to D.
   - a tile names its keys by row offsets: key j is kb + off[j], its value vb + off[j] (the paged
     and the cluster-filtered kernels gather through them); off = NULL means contiguous rows j D
     (no offset loads in the inner loops; GQA, one single-thread run: 1.24x -> 1.01x the old time).
   - state of one work item: m[G], l[G], acc[G][Dp]; scratch sc[G][KD_TK] (kd_scratch). Partial
     states (kd_parts) of the nsplit splits of row group r lie at P.m/P.l + (r nsplit + sp) G,
     P.acc + (r nsplit + sp) G Dp, i.e. work item it = r nsplit + sp.
   - the softmax is in the natural-log domain: weights kv_exp_fast(s - m) (< 2 ulp, argument
     clamped at -87, i.e. weights below 1.6e-38 are not flushed to 0), rescales and merge by expf. */
#ifndef KARENA_DECODE_H
#define KARENA_DECODE_H

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "karena/vmath.h"

/* Tuning knobs (the decode_attention template sets them before the include; every other user
   keeps these defaults). */
#ifndef KD_TK
#define KD_TK 32 /* keys per tile: a multiple of 16, so of KV_VW on every path */
#endif
#ifndef KD_NA
#define KD_NA 4 /* accumulator vectors per V slice (KD_NA KV_VW floats held in registers over a tile) */
#endif
#ifndef KD_ITEMS_PER_THREAD
#define KD_ITEMS_PER_THREAD 4 /* kd_splits: work items per thread it aims for */
#endif
#ifndef KD_SPLIT_KEYS
#define KD_SPLIT_KEYS 256 /* kd_gqa_decode: fewest keys per split */
#endif
#ifndef KD_SCHEDULE
#define KD_SCHEDULE static /* kd_gqa_decode: OpenMP schedule of its work items */
#endif
#if KD_TK % 16 || KD_TK < 16
#error "KD_TK must be a positive multiple of 16"
#endif

static inline long kd_pad(long D) { return (D + 15) & ~15L; }

/* dot(a, b) over d elements; a zero-padded to a multiple of KV_VW, b read only up to d */
static inline float kd_dot(const float* a, const float* b, long d) {
  kv_f s0 = kv_set1(0.f), s1 = kv_set1(0.f);
  long i = 0;
  for (; i + 2 * KV_VW <= d; i += 2 * KV_VW) {
    s0 += kv_load(a + i) * kv_load(b + i);
    s1 += kv_load(a + i + KV_VW) * kv_load(b + i + KV_VW);
  }
  for (; i + KV_VW <= d; i += KV_VW) s0 += kv_load(a + i) * kv_load(b + i);
  float s = kv_hsum(s0 + s1);
  for (; i < d; i++) s += a[i] * b[i];
  return s;
}

/* qs[g][0:Dp] = q row g * scale, zero-padded */
static inline void kd_load_q(float* qs, const float* q, long G, long D, long Dp, float scale) {
  memset(qs, 0, sizeof(float) * G * Dp);
  for (long g = 0; g < G; g++)
    for (long d = 0; d < D; d++) qs[g * Dp + d] = q[g * D + d] * scale;
}

static inline void kd_init(long G, long Dp, float* m, float* l, float* acc) {
  for (long g = 0; g < G; g++) { m[g] = -INFINITY; l[g] = 0.f; }
  memset(acc, 0, sizeof(float) * G * Dp);
}

/* One online-softmax step of G rows over n <= KD_TK keys at kb/vb + off[j] (or + j D). prefetch (a constant
   at every call site, so the branch folds away): request every line of the tile's K and V rows up
   front, for gathered rows that defeat the hardware prefetcher; contiguous rows do not need it. */
#define KD_ROW(j) (off ? off[j] : (j) * D) /* row offset of key j in kd_tile */
static inline void kd_tile(const float* qs, const float* kb, const float* vb, const long* off, long n, long D,
                           long Dp, long G, float* m, float* l, float* acc, float* sc, int prefetch) {
  if (prefetch)
    for (long j = 0; j < n; j++)
      for (long d = 0; d < D; d += 16) { __builtin_prefetch(kb + KD_ROW(j) + d); __builtin_prefetch(vb + KD_ROW(j) + d); }
  for (long j = 0; j < n; j++) {
    const float* kr = kb + KD_ROW(j);
    for (long g = 0; g < G; g++) sc[g * KD_TK + j] = kd_dot(qs + g * Dp, kr, D);
  }
  for (long g = 0; g < G; g++) {
    float* s = sc + g * KD_TK;
    for (long j = n; j < KD_TK; j++) s[j] = -INFINITY;
    kv_f mx = kv_load(s);
    for (long j = KV_VW; j < KD_TK; j += KV_VW) mx = kv_max(mx, kv_load(s + j));
    const float mt = kv_hmax(mx);
    if (mt > m[g]) {
      const float alpha = expf(m[g] - mt); /* 0 when m was -inf */
      l[g] *= alpha;
      float* a = acc + g * Dp;
      for (long d = 0; d < D; d++) a[d] *= alpha;
      m[g] = mt;
    }
    const kv_f mv = kv_set1(m[g]);
    for (long j = 0; j < KD_TK; j += KV_VW) kv_store(s + j, kv_exp_fast(kv_load(s + j) - mv));
    for (long j = n; j < KD_TK; j++) s[j] = 0.f; /* padding keys weigh 0 (exp_fast clamps, never 0) */
    kv_f sum = kv_load(s);
    for (long j = KV_VW; j < KD_TK; j += KV_VW) sum += kv_load(s + j);
    l[g] += kv_hsum(sum);
  }
  /* acc[g] += sum_j p[g][j] v_j, a KD_NA-vector slice of acc held in registers over the tile */
  long d = 0;
  for (; d + KD_NA * KV_VW <= D; d += KD_NA * KV_VW) {
    for (long g = 0; g < G; g++) {
      float* a = acc + g * Dp + d;
      const float* p = sc + g * KD_TK;
      kv_f r[KD_NA];
      for (int u = 0; u < KD_NA; u++) r[u] = kv_load(a + u * KV_VW);
      for (long j = 0; j < n; j++) {
        const float* vr = vb + KD_ROW(j) + d;
        const kv_f pj = kv_set1(p[j]);
        for (int u = 0; u < KD_NA; u++) r[u] += pj * kv_load(vr + u * KV_VW);
      }
      for (int u = 0; u < KD_NA; u++) kv_store(a + u * KV_VW, r[u]);
    }
  }
  for (; d + KV_VW <= D; d += KV_VW) {
    for (long g = 0; g < G; g++) {
      float* a = acc + g * Dp + d;
      const float* p = sc + g * KD_TK;
      kv_f r = kv_load(a);
      for (long j = 0; j < n; j++) r += kv_set1(p[j]) * kv_load(vb + KD_ROW(j) + d);
      kv_store(a, r);
    }
  }
  for (; d < D; d++) {
    for (long g = 0; g < G; g++) {
      const float* p = sc + g * KD_TK;
      float a = acc[g * Dp + d];
      for (long j = 0; j < n; j++) a += p[j] * vb[KD_ROW(j) + d];
      acc[g * Dp + d] = a;
    }
  }
}

/* Merge the nsplit partial states of row g (pm/pl[sp G + g], pacc[(sp G + g) Dp]) into o[0:D]. */
static inline void kd_merge(long nsplit, long G, long D, long Dp, const float* pm, const float* pl,
                            const float* pacc, long g, float* o) {
  float M = -INFINITY;
  for (long sp = 0; sp < nsplit; sp++) M = pm[sp * G + g] > M ? pm[sp * G + g] : M;
  float L = 0.f;
  for (long d = 0; d < D; d++) o[d] = 0.f;
  for (long sp = 0; sp < nsplit; sp++) {
    const float mm = pm[sp * G + g];
    if (mm == -INFINITY) continue; /* split without keys */
    const float w = expf(mm - M);
    L += w * pl[sp * G + g];
    const float* a = pacc + (sp * G + g) * Dp;
    for (long d = 0; d < D; d++) o[d] += w * a[d];
  }
  const float inv = 1.f / L;
  for (long d = 0; d < D; d++) o[d] *= inv;
}

/* out[(r G + g) D + 0:D] for every row group r < groups and g < G, from the partial states */
static inline void kd_merge_all(long groups, long nsplit, long G, long D, long Dp, const float* pm,
                                const float* pl, const float* pacc, float* out) {
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < groups * G; r++) {
    const long grp = r / G, g = r % G;
    kd_merge(nsplit, G, D, Dp, pm + grp * nsplit * G, pl + grp * nsplit * G, pacc + grp * nsplit * G * Dp, g,
             out + r * D);
  }
}

/* Partial states of `items` work items of G rows each (one allocation): m, l [items G],
   acc [items G Dp]. kd_parts_finish merges them into out (kd_merge_all) and frees them. */
typedef struct { float *m, *l, *acc; } kd_parts;
static inline kd_parts kd_parts_new(long items, long G, long Dp) {
  kd_parts P;
  P.m = (float*)malloc(sizeof(float) * items * G * (2 + Dp));
  P.l = P.m + items * G;
  P.acc = P.l + items * G;
  return P;
}
static inline void kd_parts_finish(kd_parts P, long groups, long nsplit, long G, long D, long Dp, float* out) {
  kd_merge_all(groups, nsplit, G, D, Dp, P.m, P.l, P.acc, out);
  free(P.m);
}

/* Per-thread scratch: query rows qs [G Dp] followed by the tile scores sc [G KD_TK] (free(qs)). */
static inline float* kd_scratch(long G, long Dp) {
  return (float*)aligned_alloc(64, sizeof(float) * G * (Dp + KD_TK));
}

/* Number of key splits so that groups * nsplit work items keep the threads busy
   (KD_ITEMS_PER_THREAD items per thread), with at least min_keys of the S keys per split. */
static inline long kd_splits(long groups, long S, long min_keys) {
  const long want = KD_ITEMS_PER_THREAD * (long)omp_get_max_threads();
  long nsplit = 1;
  if (groups < want) {
    nsplit = (want + groups - 1) / groups;
    const long most = (S + min_keys - 1) / min_keys;
    if (nsplit > most) nsplit = most;
    if (nsplit < 1) nsplit = 1;
  }
  return nsplit;
}

/* Contiguous GQA decode: q [B, Hkv G, D], k/v [B, Hkv, S, D], out like q; qscale = 1/sqrt(D).
   Work items (batch, kv head, split of S), KD_SPLIT_KEYS+ keys per split, scheduled KD_SCHEDULE. */
static void kd_gqa_decode(const float* q, const float* k, const float* v, float* out, long B, long Hkv, long G,
                          long S, long D, float qscale) {
  const long pairs = B * Hkv, nsplit = kd_splits(pairs, S, KD_SPLIT_KEYS), Dp = kd_pad(D), items = pairs * nsplit;
  const kd_parts P = kd_parts_new(items, G, Dp);
  #pragma omp parallel
  {
    float* qs = kd_scratch(G, Dp);
    float* sc = qs + G * Dp;
    #pragma omp for schedule(KD_SCHEDULE)
    for (long it = 0; it < items; it++) {
      const long pair = it / nsplit, sp = it % nsplit;
      const long s0 = S * sp / nsplit, s1 = S * (sp + 1) / nsplit;
      kd_load_q(qs, q + pair * G * D, G, D, Dp, qscale);
      float *m = P.m + it * G, *l = P.l + it * G, *acc = P.acc + it * G * Dp;
      kd_init(G, Dp, m, l, acc);
      const float *kh = k + pair * S * D, *vh = v + pair * S * D;
      for (long j0 = s0; j0 < s1; j0 += KD_TK) {
        const long n = s1 - j0 < KD_TK ? s1 - j0 : KD_TK;
        kd_tile(qs, kh + j0 * D, vh + j0 * D, 0, n, D, Dp, G, m, l, acc, sc, 0);
      }
    }
    free(qs);
  }
  kd_parts_finish(P, pairs, nsplit, G, D, Dp, out);
}

#undef KD_ROW

#endif /* KARENA_DECODE_H */
