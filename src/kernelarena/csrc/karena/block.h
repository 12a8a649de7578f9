/* karena/block.h: the register-blocked 4-row GEMM block of the attention tiles, on karena/vmath.h's
   native-width vectors, and exp2 for x <= 0.

   kb_gemm4 computes c[r][0:n] = alpha[r] c[r][0:n] + a[r][0:K] @ b[0:K][0:n] for four rows r (rows
   named by pointers, so query rows, score rows and packed buffers all fit). Its inner block holds
   4 rows x KB_NV vectors of accumulators in registers and streams b by rows: KB_NV = 4 with
   AVX-512 (16 zmm accumulators of 32, 64 columns per block), 2 otherwise (8 ymm or xmm accumulators
   plus 2 b vectors and a broadcast fit the 16 registers of AVX2 and SSE; 16 or 8 columns). The
   column blocks are sized for the registers the ISA has, not for a fixed vector type: a 64-byte
   vector-extension type (the former karena/v16.h) is lowered through the stack by gcc when the
   target has no 64-byte registers (causal prefill attention on AVX2 was 0.55x eager for it).

   kb_gemm is the same over strided row-major matrices (M a multiple of 4).
   Used by karena/flash.h (S = Q K^T and O = alpha O + P V of the prefill-style attentions) and
   chunkwise_linear_attention (its chunk GEMMs, kb_gemm). */
#ifndef KARENA_BLOCK_H
#define KARENA_BLOCK_H

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "karena/vmath.h"

#if KV_VW == 16
#define KB_NV 4
#else
#define KB_NV 2
#endif

/* one column block [j0, j0 + nv KV_VW) of kb_gemm4; nv <= KB_NV is a constant after inlining */
static inline __attribute__((always_inline)) void kb__block(const float* const* a, const float* b, long ldb,
                                                            long K, float* const* c, long j0,
                                                            const float* alpha, const int nv) {
  kv_f acc[4][KB_NV];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
    for (int v = 0; v < KB_NV; v++)
      if (v < nv) acc[r][v] = alpha ? kv_load(c[r] + j0 + v * KV_VW) * alpha[r] : kv_set1(0.f);
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  for (long k = 0; k < K; k++) {
    const float* bk = b + k * ldb + j0;
    kv_f bv[KB_NV];
#pragma GCC unroll 4
    for (int v = 0; v < KB_NV; v++)
      if (v < nv) bv[v] = kv_load(bk + v * KV_VW);
    const kv_f x0 = kv_set1(a0[k]), x1 = kv_set1(a1[k]), x2 = kv_set1(a2[k]), x3 = kv_set1(a3[k]);
#pragma GCC unroll 4
    for (int v = 0; v < KB_NV; v++)
      if (v < nv) {
        acc[0][v] += x0 * bv[v];
        acc[1][v] += x1 * bv[v];
        acc[2][v] += x2 * bv[v];
        acc[3][v] += x3 * bv[v];
      }
  }
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
    for (int v = 0; v < KB_NV; v++)
      if (v < nv) kv_store(c[r] + j0 + v * KV_VW, acc[r][v]);
}

/* c[r][0:n] = (alpha ? alpha[r] c[r][0:n] : 0) + a[r][0:K] @ b[0:K][0:n] for r < 4.
   n must be a multiple of 16 (so of KV_VW on every path); b has row stride ldb; c[r] may not alias
   a or b. */
static inline __attribute__((always_inline)) void kb_gemm4(const float* const* a, const float* b, long ldb, long K, float* const* c, long n,
                            const float* alpha) {
  long j = 0;
  for (; j + KB_NV * KV_VW <= n; j += KB_NV * KV_VW) kb__block(a, b, ldb, K, c, j, alpha, KB_NV);
#if KB_NV == 4
  if (j + 2 * KV_VW <= n) {
    kb__block(a, b, ldb, K, c, j, alpha, 2);
    j += 2 * KV_VW;
  }
#endif
  for (; j < n; j += KV_VW) kb__block(a, b, ldb, K, c, j, alpha, 1);
}

/* C[M][N] = (acc ? C : 0) + A[M][K] @ B[K][N] for row-major strided matrices; M % 4 == 0, N % 16 == 0. */
static inline void kb_gemm(const float* A, long lda, const float* B, long ldb, float* C, long ldc, long M, long N,
                           long K, int acc) {
  static const float one[4] = {1.f, 1.f, 1.f, 1.f};
  for (long i = 0; i < M; i += 4) {
    const float* a[4] = {A + i * lda, A + (i + 1) * lda, A + (i + 2) * lda, A + (i + 3) * lda};
    float* c[4] = {C + i * ldc, C + (i + 1) * ldc, C + (i + 2) * ldc, C + (i + 3) * ldc};
    kb_gemm4(a, B, ldb, K, c, N, acc ? one : NULL);
  }
}

/* 2^x for x <= 0 (clamped to [-126, 0]); degree-8 Taylor of 2^f on |f| <= 0.5: rel. error < 1e-7.
   The online softmax of the attention tiles works in the exp2 domain (queries pre-scaled by
   log2(e)/sqrt(D)). */
static inline kv_f kb_exp2(kv_f x) {
  x = kv_min(kv_max(x, kv_set1(-126.0f)), kv_set1(0.0f));
  const kv_f n = (x + 12582912.0f) - 12582912.0f;
  const kv_f f = x - n;
  kv_f p = kv_set1(1.3215486790144307e-06f);
  p = p * f + 1.525273380405984e-05f;
  p = p * f + 1.5403530393381606e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.618129107628477e-03f;
  p = p * f + 5.550410866482158e-02f;
  p = p * f + 2.402265069591007e-01f;
  p = p * f + 6.931471805599453e-01f;
  p = p * f + 1.0f;
  const kv_i e = (__builtin_convertvector(n, kv_i) + 127) << 23;
  return p * (kv_f)e;
}

#endif /* KARENA_BLOCK_H */
