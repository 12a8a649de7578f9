"""Tanh-approximated GELU (C/OpenMP) in one vectorised streaming pass.

Uses the identity ``0.5 * (1 + tanh(z)) = 1 / (1 + exp(-2z))``, so
``gelu(x) = x / (1 + exp(-2z))`` with ``z = sqrt(2/pi) * (x + 0.044715 x^3)``: one exp and one
division per element, no cancellation for negative x (where ``1 + tanh(z)`` loses all digits).
``exp`` is an inline polynomial written so that gcc vectorises the loop (no libm call).
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

void gelu_tanh_f32(const float* restrict x, float* restrict y, long n) {
  const float k2 = -2.0f * 0.7978845608028654f;  /* -2 * sqrt(2/pi) */
  const long chunk = 4096;
  #pragma omp parallel for schedule(static)
  for (long b = 0; b < n; b += chunk) {
    long e = b + chunk < n ? b + chunk : n;
    #pragma omp simd
    for (long i = b; i < e; ++i) {
      float v = x[i];
      float t = k2 * (v + 0.044715f * v * v * v);
      y[i] = v / (1.0f + exp_f(t));
    }
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
