/* karena/panel64.h: a skinny GEMM for routers and assignments, C[rows, n] = A[rows, k] . W[n, k]^T with
   n small (experts, centroids): W is packed once into 64-wide k-major panels and a 6 x 64 block of
   C is computed per call. Used by relu_rmsnorm_router, topk_softmax_router and kmeans_key_assign.

   The micro-kernel is written once on kv_f (karena/vmath.h); the column block it keeps in registers
   follows the ISA so the accumulators fill, but do not spill, the register file: 6 x 64 (24 zmm) with
   AVX-512, 6 x 16 (12 ymm) with AVX2, 6 x 8 (12 xmm/q registers) on the generic path. */
#ifndef KARENA_PANEL64_H
#define KARENA_PANEL64_H

#include "karena/vmath.h"

#define MR 6
#define NR 64
#if KV_VW == 16
#define P64_NB 4 /* vectors per row in one register block */
#else
#define P64_NB 2
#endif

/* Wp[p][k][64]: panel p holds rows 64p..64p+63 of w (zero padded), k-major for broadcast-FMA. */
static void pack_panels(const float* w, long n, long kdim, float* wp) {
  long np = (n + NR - 1) / NR;
  #pragma omp parallel for schedule(static)
  for (long p = 0; p < np; ++p) {
    float* dst = wp + p * kdim * NR;
    for (long k = 0; k < kdim; ++k)
      for (int j = 0; j < NR; ++j) {
        long e = p * NR + j;
        dst[k * NR + j] = e < n ? w[e * kdim + k] : 0.f;
      }
  }
}

/* c[6][64] = a rows (6 pointers) . panel (kdim x 64); each element is a chain of fused multiply-adds
   in k order, the same on every path. */
static void micro_6x64(const float* const* a, const float* bp, long kdim, float* c) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  for (int j0 = 0; j0 < NR; j0 += P64_NB * KV_VW) {
    kv_f acc[MR][P64_NB];
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < P64_NB; ++v) acc[i][v] = (kv_f){0};
    for (long k = 0; k < kdim; ++k) {
      const float* b = bp + k * NR + j0;
      kv_f bv[P64_NB];
      for (int v = 0; v < P64_NB; ++v) bv[v] = kv_load(b + v * KV_VW);
      const float xs[MR] = {a0[k], a1[k], a2[k], a3[k], a4[k], a5[k]};
      for (int i = 0; i < MR; ++i) {
        const kv_f x = kv_set1(xs[i]);
        for (int v = 0; v < P64_NB; ++v) acc[i][v] = x * bv[v] + acc[i][v];
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < P64_NB; ++v) kv_store(c + i * NR + j0 + v * KV_VW, acc[i][v]);
  }
}

#endif /* KARENA_PANEL64_H */
