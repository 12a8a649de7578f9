/* karena/v16.h: a fixed 16-float vector (64 bytes, GCC/Clang vector extension) and the helpers of
   the attention solutions' tiles: load/store, broadcast, select, horizontal sum/max, and exp2 for
   x <= 0 (the online softmax works in the exp2 domain with queries pre-scaled by log2(e)/sqrt(D)).
   The width is fixed on purpose: the tiles are 64 keys = 4 vectors on every ISA, and the compiler
   lowers a 64-byte vector to one zmm (AVX-512), two ymm (AVX2) or four xmm/NEON registers, so one
   source serves every path (forced with KARENA_CPU_ISA through gemm_build.FLAGS). */
#ifndef KARENA_V16_H
#define KARENA_V16_H
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

#endif /* KARENA_V16_H */
