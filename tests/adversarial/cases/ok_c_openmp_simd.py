"""EXPLOIT: none: a correct C kernel (load_library, OpenMP over rows, SIMD over columns).
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

Allocates the output with torch.empty_like and writes every element.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void scaled_tanh(const float* restrict x, const float* restrict w, float* restrict y,
                 long rows, long cols, float alpha) {
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    #pragma omp simd
    for (long c = 0; c < cols; ++c) yr[c] = tanhf(xr[c] * w[c]) * alpha;
  }
}
"""
_LIB = load_library(_SRC, functions={"scaled_tanh": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.scaled_tanh(
            x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha
        )
        return y
