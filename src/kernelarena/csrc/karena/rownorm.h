/* karena/rownorm.h: explicit accumulator chains for a row reduction, the alternative to a single
   `omp simd reduction` loop in the normalization templates (rmsnorm, layernorm, add_rmsnorm in
   kernelarena.search.templates; their `reduce` knob, e.g. "16x2").

   A row is reduced by KR_UNR independent chains of KR_VEC lanes (acc[u][l], type kr_acc), summed
   at the end by a pairwise tree. More independent additions than the one vector chain gcc makes of
   an `omp simd reduction` hide more FMA latency when the row is in cache; on the machines measured
   so far the simd loop was still as fast or faster (docs/cpu_kernels.md), which is why it is the
   templates' default.

   Define before including: KR_VEC, KR_UNR (compile-time chain shape) and KR_ACC (float or double);
   optionally KR_BLOCK_START(i), run once before each whole block (a software prefetch). */
#ifndef KARENA_ROWNORM_H
#define KARENA_ROWNORM_H

#include <math.h>
#include <stdint.h>
#include "karena/vmath.h"

typedef KR_ACC kr_acc;

#define KR_BLOCK (KR_VEC * KR_UNR)

static inline kr_acc kr_sq(kr_acc v) { return v * v; }

static inline void kr_zero(kr_acc a[KR_UNR][KR_VEC]) {
  for (int u = 0; u < KR_UNR; ++u)
    for (int l = 0; l < KR_VEC; ++l) a[u][l] = 0;
}

/* The total of the chains (consumes them): chains into chain 0 with whole-vector adds, then lanes
   halved pairwise, so log2(KR_VEC) dependent adds instead of a serial chain of KR_UNR * KR_VEC
   (without -ffast-math gcc keeps a written order; a tree is also the more accurate one). */
static inline kr_acc kr_sum(kr_acc a[KR_UNR][KR_VEC]) {
  for (int u = 1; u < KR_UNR; ++u)
    for (int l = 0; l < KR_VEC; ++l) a[0][l] += a[u][l];
  int w = KR_VEC;
  for (; w % 2 == 0; w /= 2)
    for (int l = 0; l < w / 2; ++l) a[0][l] += a[0][l + w / 2];
  kr_acc s = 0;
  for (int l = 0; l < w; ++l) s += a[0][l];
  return s;
}

#ifndef KR_BLOCK_START
#define KR_BLOCK_START(i) ((void)0)
#endif

/* for every whole block from i: each chain u and lane l with its element index j (acc[u][l] takes
   element j); leaves i at the first element of the tail. The hook runs in the loop condition so
   that it runs once per block, only when a block follows. */
#define KR_BLOCKS(i, n)                                                 \
  for (; (i) + KR_BLOCK <= (n) && (KR_BLOCK_START(i), 1); (i) += KR_BLOCK) \
    for (long u = 0; u < KR_UNR; ++u)                                    \
      for (long l = 0, j = (i) + u * KR_VEC; l < KR_VEC; ++l, ++j)

/* Declares `kr_acc var` = the sum of `term` (an expression of the element index j) over j in
   [0, n): whole blocks on the chains, then the tail. */
#define KR_SUM(var, n, term)                                   \
  kr_acc var;                                                  \
  {                                                            \
    kr_acc kr_ch_[KR_UNR][KR_VEC];                             \
    kr_zero(kr_ch_);                                           \
    long kr_i_ = 0;                                            \
    KR_BLOCKS(kr_i_, n) kr_ch_[u][l] += (term);                \
    var = kr_sum(kr_ch_);                                      \
    for (long j = kr_i_; j < (n); ++j) var += (term);          \
  }

#endif
