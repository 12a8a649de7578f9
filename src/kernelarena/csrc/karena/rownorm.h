/* karena/rownorm.h: the row machinery shared by the normalization templates (rmsnorm, layernorm,
   add_rmsnorm in kernelarena.search.templates).

   A row is reduced by KR_UNR independent chains of KR_VEC lanes (acc[u][l], type kr_acc): enough
   independent additions to hide FMA latency and for gcc to vectorize without -ffast-math, which
   would let it reassociate a single sum. The output pass writes with streaming stores when the
   output exceeds the caches (no read-for-ownership of the fresh output: a third less DRAM traffic).

   Define before including: KR_VEC, KR_UNR (compile-time chain shape) and KR_ACC (float or double). */
#ifndef KARENA_ROWNORM_H
#define KARENA_ROWNORM_H

#include <math.h>
#include <stdint.h>
#include "karena/vmath.h"

typedef KR_ACC kr_acc;

#define KR_BLOCK (KR_VEC * KR_UNR)

/* outputs at least this large bypass the caches */
#define KR_STREAM_BYTES (8L << 20)

static inline int kr_stream(long out_floats) { return out_floats * 4 >= KR_STREAM_BYTES; }

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

/* Hook run once before each whole block (a software prefetch); empty unless the includer sets it. */
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

/* The output pass of a row, elements [0, n): OUT1(j) writes element j, OUTV(j) the KV_VW elements
   from j with kv_stream. With `stream`, scalar stores bring `base + j` to a vector boundary and whole
   vectors are streamed; what is left (all of the row without `stream`) is a plain simd loop. The
   includer defines OUT1 and OUTV next to the row function that uses them. */
#define KR_OUT_PASS(base, n, stream)                                          \
  do {                                                                        \
    long j0_ = 0;                                                             \
    if (stream) {                                                             \
      for (; j0_ < (n) && ((uintptr_t)((base) + j0_) & (KV_VW * 4 - 1)); ++j0_) { \
        OUT1(j0_)                                                             \
      }                                                                       \
      for (; j0_ + KV_VW <= (n); j0_ += KV_VW) {                              \
        OUTV(j0_)                                                             \
      }                                                                       \
    }                                                                         \
    _Pragma("omp simd") for (long j = j0_; j < (n); ++j) { OUT1(j) }          \
  } while (0)

#endif
