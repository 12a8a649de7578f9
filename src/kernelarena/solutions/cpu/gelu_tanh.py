"""Tanh-approximated GELU (C/OpenMP) in one vectorised streaming pass.

Uses the identity ``0.5 * (1 + tanh(z)) = 1 / (1 + exp(-2z))``, so
``gelu(x) = x / (1 + exp(-2z))`` with ``z = sqrt(2/pi) * (x + 0.044715 x^3)``: one exp and one
division per element, no cancellation for negative x (where ``1 + tanh(z)`` loses all digits).
``exp`` is an inline polynomial (no libm call). With AVX-512 the loop is written with intrinsics
and the division becomes a 14-bit reciprocal estimate refined by one Newton step (a 512-bit
``vdivps`` would otherwise bound the loop), and outputs larger than the caches are written with
streaming stores (no read-for-ownership); elsewhere the portable C loop is auto-vectorised.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import DEFAULT_FLAGS, load_library

_SRC = r"""
#include <stdint.h>
#include <string.h>

/* exp(x) for float: |rel err| < 2 ulp on [-87, 88]; inputs are clamped to that range, which
   only affects values whose final result is x or ~0 anyway. */
static inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round to nearest */
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float s;
  memcpy(&s, &bits, 4);
  return y * s;
}

#ifdef __AVX512F__
#include <immintrin.h>
/* the same exp with AVX-512: 2^n applied with scalef */
static inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, n);
}

/* 1/d to ~1 ulp: 14-bit hardware estimate plus one Newton step (vdivps would be the bottleneck) */
static inline __m512 recip512(__m512 d) {
  __m512 r = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}
#endif

/* outputs larger than this bypass the caches (streaming stores: no read-for-ownership) */
#define STREAM_BYTES (8L << 20)

void gelu_tanh_f32(const float* restrict x, float* restrict y, long n) {
  const float k2 = -2.0f * 0.7978845608028654f;  /* -2 * sqrt(2/pi) */
  const long chunk = 4096;  /* chunk starts stay 64-byte aligned relative to y */
  int stream = n * 4 >= STREAM_BYTES && ((uintptr_t)y & 63) == 0;
  #pragma omp parallel
  {
    #pragma omp for schedule(static) nowait
    for (long b = 0; b < n; b += chunk) {
      long e = b + chunk < n ? b + chunk : n;
      long i = b;
#ifdef __AVX512F__
      for (; i + 16 <= e; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
        __m512 t = _mm512_mul_ps(_mm512_set1_ps(k2), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), v3, v));
        __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(t));
        __m512 out = _mm512_mul_ps(v, recip512(den));
        if (stream) _mm512_stream_ps(y + i, out);
        else _mm512_storeu_ps(y + i, out);
      }
#endif
      #pragma omp simd
      for (long j = i; j < e; ++j) {
        float v = x[j];
        float t = k2 * (v + 0.044715f * v * v * v);
        y[j] = v / (1.0f + exp_f(t));
      }
    }
#ifdef __AVX512F__
    _mm_sfence();  /* make this thread's streaming stores visible before the region ends */
#endif
  }
}
"""

_LIB = load_library(
    _SRC,
    functions={"gelu_tanh_f32": (None, ["ptr", "ptr", "long"])},
    flags=(*DEFAULT_FLAGS, "-mprefer-vector-width=512"),
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.gelu_tanh_f32(x.data_ptr(), y.data_ptr(), x.numel())
        return y
