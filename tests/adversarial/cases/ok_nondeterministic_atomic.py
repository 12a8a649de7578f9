"""EXPLOIT: none: a correct OpenMP kernel whose float sum order varies run to run (atomic adds, dynamic schedule).
EXPECT: pass
TASK: tests/adversarial/tasks/global_norm.py
CLASS: 0

Bitwise nondeterminism within tolerance must be flagged, not rejected.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void normalize(const float* x, float* y, long n, float gain) {
  float total = 0.0f;
  #pragma omp parallel for schedule(dynamic, 97)
  for (long b = 0; b < n; b += 97) {
    float part = 0.0f;
    long e = b + 97 < n ? b + 97 : n;
    for (long i = b; i < e; ++i) part += x[i] * x[i];
    #pragma omp atomic
    total += part;
  }
  float s = gain / sqrtf(total);
  #pragma omp parallel for
  for (long i = 0; i < n; ++i) y[i] = x[i] * s;
}
"""
_LIB = load_library(_SRC, functions={"normalize": (None, ["ptr", "ptr", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, gain: float):
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.normalize(x.data_ptr(), y.data_ptr(), x.numel(), self.gain)
        return y
