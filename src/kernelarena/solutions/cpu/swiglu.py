"""SwiGLU (C/OpenMP): ``silu(gate) * up`` in one streaming pass.

``silu(g) * u = g * u / (1 + exp(-g))``. ``exp`` is an inline Cody-Waite range reduction plus a
degree-6 polynomial (< 2 ulp) written in plain C with branch-free clamps and a magic-number
rounding, so gcc vectorises the whole loop (libm's ``expf`` call would block vectorisation without
``-ffast-math``). Tokens are split across OpenMP threads; each row reads gate and up once and
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

void swiglu_f32(const float* restrict x, float* restrict y, long tokens, long hidden) {
  #pragma omp parallel for schedule(static)
  for (long t = 0; t < tokens; ++t) {
    const float* g = x + t * 2 * hidden;
    const float* u = g + hidden;
    float* o = y + t * hidden;
    #pragma omp simd
    for (long c = 0; c < hidden; ++c) {
      float gv = g[c];
      o[c] = gv * u[c] / (1.0f + exp_f(-gv));
    }
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
