/* karena/vmath.h: portable vector math for the built-in CPU solutions.

   One source for every ISA: the vector type kv_f is a GCC/Clang vector extension whose width the
   compiler's ISA macros pick (16 floats with AVX-512, 8 with AVX2+FMA, 4 otherwise: SSE, NEON...),
   so `x * y + z` becomes vfmadd on AVX2/AVX-512 and fmla on ARM from the same code. Intrinsics are
   used only where the extensions have no spelling (non-temporal stores, the fast reciprocal).

   Contents: loads/stores (unaligned, partial for loop tails, streaming), select/min/max/abs,
   horizontal sum/max, exp, log, tanh, sigmoid (vector and scalar twins that give the same result),
   and a fast reciprocal. Accuracy against libm (tests/cpu/test_vmath.py, on every path the
   machine runs): exp, log < 3 ulp; tanh, sigmoid < 4 ulp or 1e-7 absolute; inf, nan, 0, and
   subnormal inputs/outputs as libm (exp_fast/sigmoid clamp instead, documented below).

   KV_ISA names the path a build took; KV_VW is the vector width in floats. */
#ifndef KARENA_VMATH_H
#define KARENA_VMATH_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) || defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define KV_VW 16
#define KV_ISA "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
#define KV_VW 8
#define KV_ISA "avx2"
#else
#define KV_VW 4
#define KV_ISA "generic"
#endif

typedef float kv_f __attribute__((vector_size(KV_VW * 4)));
typedef int32_t kv_i __attribute__((vector_size(KV_VW * 4)));
typedef float kv_fu __attribute__((vector_size(KV_VW * 4), aligned(4))); /* unaligned access */

/* ---- construction, loads and stores ---- */
static inline kv_f kv_set1(float a) { return (kv_f){0} + a; }
static inline kv_f kv_load(const float* p) { return *(const kv_fu*)p; }
static inline void kv_store(float* p, kv_f v) { *(kv_fu*)p = v; }

/* the first n (< KV_VW) lanes from p, the others `fill` (a loop tail without reading past the end) */
static inline kv_f kv_load_part(const float* p, long n, float fill) {
  float t[KV_VW];
  for (int i = 0; i < KV_VW; ++i) t[i] = fill;
  memcpy(t, p, (size_t)(n > 0 ? n : 0) * sizeof(float));
  return kv_load(t);
}
static inline void kv_store_part(float* p, kv_f v, long n) {
  float t[KV_VW];
  kv_store(t, v);
  memcpy(p, t, (size_t)(n > 0 ? n : 0) * sizeof(float));
}

/* Non-temporal store (no read-for-ownership; for outputs larger than the caches). p must be aligned
   to the vector size (KV_VW * 4 bytes); the generic path without SSE stores normally. Call
   kv_sfence() before the results are used by another thread. */
static inline void kv_stream(float* p, kv_f v) {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, (__m512)v);
#elif defined(__AVX2__) && defined(__FMA__)
  _mm256_stream_ps(p, (__m256)v);
#elif defined(__SSE2__)
  _mm_stream_ps(p, (__m128)v);
#else
  *(kv_f*)p = v;
#endif
}
static inline void kv_sfence(void) {
#if defined(__SSE2__) || defined(__AVX__) || defined(__AVX512F__)
  _mm_sfence();
#endif
}
/* dst[0:n] = src[0:n] with streaming stores for the aligned body */
static inline void kv_stream_copy(float* restrict dst, const float* restrict src, long n) {
  long i = 0;
  for (; i < n && ((uintptr_t)(dst + i) & (KV_VW * 4 - 1)); ++i) dst[i] = src[i];
  for (; i + KV_VW <= n; i += KV_VW) kv_stream(dst + i, kv_load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

/* ---- lane-wise helpers ---- */
static inline kv_f kv_sel(kv_i m, kv_f a, kv_f b) { return (kv_f)((m & (kv_i)a) | (~m & (kv_i)b)); }
static inline kv_f kv_max(kv_f a, kv_f b) { return kv_sel(a > b, a, b); }
static inline kv_f kv_min(kv_f a, kv_f b) { return kv_sel(a < b, a, b); }
static inline kv_f kv_abs(kv_f a) { return (kv_f)((kv_i)a & 0x7fffffff); }
static inline kv_f kv_fma(kv_f a, kv_f b, kv_f c) { return a * b + c; } /* contracted with -O3 */

/* ---- horizontal reductions (pairwise halving: log2(KV_VW) steps) ---- */
/* The sum halves in registers with shuffles (lanes i + w added to lanes i, the same order as the max
   below, which goes through memory): karena/decode.h calls it once per key and query row. */
typedef float kv__f8 __attribute__((vector_size(32)));
typedef float kv__f4 __attribute__((vector_size(16)));
static inline float kv__hsum4(kv__f4 b) { return (b[0] + b[2]) + (b[1] + b[3]); }
static inline float kv_hsum(kv_f v) {
#if KV_VW == 16
  const kv__f8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                   __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  return kv__hsum4(__builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7));
#elif KV_VW == 8
  return kv__hsum4(__builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7));
#else
  return kv__hsum4(v);
#endif
}
static inline float kv_hmax(kv_f v) {
  float t[KV_VW];
  kv_store(t, v);
  for (int w = KV_VW / 2; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) t[i] = t[i + w] > t[i] ? t[i + w] : t[i];
  return t[0];
}

/* ---- reciprocal ---- */
/* 1/d to about 1 ulp for finite nonzero d with |d| < 2^126: hardware estimate plus one Newton step
   (vdivps would bound a streaming loop); plain division on the generic path. */
static inline kv_f kv_rcp(kv_f d) {
#if defined(__AVX512F__)
  kv_f r = (kv_f)_mm512_rcp14_ps((__m512)d);
  return r * (2.0f - d * r);
#elif defined(__AVX2__) && defined(__FMA__)
  kv_f r = (kv_f)_mm256_rcp_ps((__m256)d);
  r = r * (2.0f - d * r);
  return r * (2.0f - d * r);
#else
  return 1.0f / d;
#endif
}

/* ---- exp ---- */
/* exp(x) for x in [-87, 88] (inputs clamped to it: no inf, nan or subnormal handling), < 2 ulp.
   Cody-Waite reduction x = n ln2 + r, degree-6 polynomial, 2^n through the exponent bits. The
   fastest form, for arguments known to be in range (softmax after max subtraction, etc.). */
/* exp(r) for the reduced argument of x = n ln2 + r (n returned through *n_out), before scaling by 2^n */
static inline kv_f kv__exp_reduced(kv_f x, kv_f* n_out) {
  const kv_f big = kv_set1(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
  const kv_f n = (x * 1.44269504088896341f + big) - big;
  kv_f r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  kv_f y = kv_set1(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  *n_out = n;
  return y * (r * r) + (r + 1.0f);
}

static inline kv_f kv_exp_fast(kv_f x) {
  x = kv_max(x, kv_set1(-87.0f));
  x = kv_min(x, kv_set1(88.0f));
  kv_f n;
  const kv_f y = kv__exp_reduced(x, &n);
  const kv_i e = (__builtin_convertvector(n, kv_i) + 127) << 23;
  return y * (kv_f)e;
}

/* exp(x) over all floats as libm: +inf above 88.72, subnormal results down to -103.97, 0 below,
   nan for nan; < 3 ulp. 2^n is applied as two factors so subnormal results round once more. */
static inline kv_f kv_exp(kv_f x) {
  const kv_f xc = kv_min(kv_max(x, kv_set1(-104.0f)), kv_set1(88.75f));
  kv_f n;
  kv_f y = kv__exp_reduced(xc, &n);
  const kv_i ni = __builtin_convertvector(n, kv_i);
  const kv_i n1 = ni >> 1, n2 = ni - n1; /* each in [-76, 65]: 2^n1, 2^n2 are normal floats */
  y = y * (kv_f)((n1 + 127) << 23) * (kv_f)((n2 + 127) << 23);
  y = kv_sel(x > 88.7228394f, kv_set1(__builtin_inff()), y);
  y = kv_sel(x < -103.972694f, kv_set1(0.0f), y);
  return kv_sel(x != x, x, y);
}

/* ---- log ---- */
/* natural log as libm: -inf at +-0, nan below 0 and for nan, +inf at +inf, subnormals exact;
   < 3 ulp. x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9 polynomial in m-1. */
static inline kv_f kv_log(kv_f x) {
  const kv_i tiny = x < 1.17549435e-38f; /* subnormal (or <= 0): scale by 2^23 first */
  kv_f xs = kv_sel(tiny, x * 8388608.0f, x);
  kv_i bits = (kv_i)xs;
  kv_i e = ((bits >> 23) & 0xff) - 126;
  kv_f m = (kv_f)((bits & 0x007fffff) | 0x3f000000); /* in [0.5, 1) */
  const kv_i lo = m < 0.707106781186547524f;
  e = e + lo; /* lanes are -1 where true */
  m = kv_sel(lo, m + m, m) - 1.0f;
  kv_f ef = __builtin_convertvector(e, kv_f) - kv_sel(tiny, kv_set1(23.0f), kv_set1(0.0f));
  const kv_f z = m * m;
  kv_f y = kv_set1(7.0376836292e-2f);
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y = y + ef * -2.12194440e-4f;
  y = y - 0.5f * z;
  y = m + y;
  y = y + ef * 0.693359375f;
  y = kv_sel(x == kv_set1(__builtin_inff()), x, y);
  y = kv_sel(x == 0.0f, kv_set1(-__builtin_inff()), y);
  return kv_sel(x < 0.0f, kv_set1(__builtin_nanf("")), kv_sel(x != x, x, y));
}

/* ---- tanh, sigmoid ---- */
/* tanh(x): odd polynomial for |x| < 0.625, else sign(x) (1 - 2 / (exp(2|x|) + 1)); +-1 at +-inf,
   nan for nan, exact sign of zero. */
static inline kv_f kv_tanh(kv_f x) {
  const kv_f a = kv_abs(x);
  const kv_f e = kv_exp_fast(kv_min(a + a, kv_set1(88.0f)));
  kv_f big = 1.0f - 2.0f / (e + 1.0f);
  const kv_f z = x * x;
  kv_f p = kv_set1(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const kv_f small = p * z * x + x;
  big = (kv_f)(((kv_i)big & 0x7fffffff) | ((kv_i)x & (int32_t)0x80000000u)); /* copysign */
  const kv_f y = kv_sel(a < 0.625f, small, big);
  return kv_sel(x != x, x, y);
}

/* sigmoid(x) = 1 / (1 + exp(-x)), 0 and 1 at -inf/+inf, nan for nan (argument of exp clamped, so
   results below ~6e-39 are flushed towards 0; absolute error < 1e-38 there). */
static inline kv_f kv_sigmoid(kv_f x) {
  const kv_f y = 1.0f / (1.0f + kv_exp_fast(-x));
  return kv_sel(x != x, x, y);
}

/* exp_fast in scalar form, written so that gcc vectorizes a loop that calls it (`#pragma omp simd`
   loops, auto-vectorized epilogues): the same polynomial, clamps and rounding as kv_exp_fast. */
static inline float kv_expf(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + (r + 1.0f);
  const int32_t bits = ((int32_t)n + 127) << 23;
  float s;
  memcpy(&s, &bits, 4);
  return y * s;
}

/* ---- scalar twins (loop tails): the same code on a vector with one live lane ---- */
static inline float kv_exp_fast_s(float x) { return kv_exp_fast(kv_set1(x))[0]; }
static inline float kv_exp_s(float x) { return kv_exp(kv_set1(x))[0]; }
static inline float kv_log_s(float x) { return kv_log(kv_set1(x))[0]; }
static inline float kv_tanh_s(float x) { return kv_tanh(kv_set1(x))[0]; }
static inline float kv_sigmoid_s(float x) { return kv_sigmoid(kv_set1(x))[0]; }

#endif /* KARENA_VMATH_H */
