"""SwiGLU (C/OpenMP): ``silu(gate) * up`` in one streaming pass.

``silu(g) * u = g * u / (1 + exp(-g))``. ``exp`` is an inline Cody-Waite range reduction plus a
degree-6 polynomial (< 2 ulp) written in plain C with branch-free clamps and a magic-number
rounding, so gcc vectorises the whole loop (libm's ``expf`` call would block vectorisation without
``-ffast-math``). With AVX-512 the loop uses intrinsics and replaces the division by a 14-bit
reciprocal estimate plus one Newton step (``vdivps`` would bound the loop), and outputs larger
than the caches are written with streaming stores (no read-for-ownership). Tokens are split across OpenMP threads; each row reads gate and up once and
writes the output once.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import DEFAULT_FLAGS, load_library

_SRC = r"""
#include <stdint.h>
#include <string.h>

/* exp(x) for float: |rel err| < 2 ulp on [-87, 88]; inputs are clamped to that range, which
   only changes results that are ~0 or overflow anyway (g / (1 + huge) -> ~0). */
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

static inline float swiglu_1(float gv, float uv) { return gv * uv / (1.0f + exp_f(-gv)); }

void swiglu_f32(const float* restrict x, float* restrict y, long tokens, long hidden) {
  int stream = tokens * hidden * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    #pragma omp for schedule(static) nowait
    for (long t = 0; t < tokens; ++t) {
      const float* g = x + t * 2 * hidden;
      const float* u = g + hidden;
      float* o = y + t * hidden;
      long c = 0;
#ifdef __AVX512F__
      if (stream)
        for (; c < hidden && ((uintptr_t)(o + c) & 63); ++c) o[c] = swiglu_1(g[c], u[c]);
      for (; c + 16 <= hidden; c += 16) {
        __m512 gv = _mm512_loadu_ps(g + c);
        __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
        __m512 out = _mm512_mul_ps(_mm512_mul_ps(gv, _mm512_loadu_ps(u + c)), recip512(den));
        if (stream) _mm512_stream_ps(o + c, out);
        else _mm512_storeu_ps(o + c, out);
      }
#endif
      #pragma omp simd
      for (long j = c; j < hidden; ++j) o[j] = swiglu_1(g[j], u[j]);
    }
#ifdef __AVX512F__
    _mm_sfence();  /* make this thread's streaming stores visible before the region ends */
#endif
  }
}
"""

_LIB = load_library(
    _SRC,
    functions={"swiglu_f32": (None, ["ptr", "ptr", "long", "long"])},
    flags=(*DEFAULT_FLAGS, "-mprefer-vector-width=512"),
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        hidden = x.shape[-1] // 2
        y = torch.empty((*x.shape[:-1], hidden), dtype=x.dtype)
        tokens = x.numel() // max(x.shape[-1], 1)
        _LIB.swiglu_f32(x.data_ptr(), y.data_ptr(), tokens, hidden)
        return y
