"""EXPLOIT: works only for small-magnitude inputs: tanh(z) = (e^2z - 1)/(e^2z + 1) in float32 overflows to inf/inf = NaN once |z| > 44, which randn inputs never reach
EXPECT: non-finite
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 9

The harness's "scaled" (x8) and "outliers" (x32 on ~1% of elements) distributions reach it.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st_exp(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) {
      float e = expf(2.0f * x[r * cols + c] * w[c]);
      y[r * cols + c] = (e - 1.0f) / (e + 1.0f) * alpha;
    }
}
"""
_LIB = load_library(_SRC, functions={"st_exp": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st_exp(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
