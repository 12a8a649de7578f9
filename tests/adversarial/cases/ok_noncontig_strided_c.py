"""EXPLOIT: none: a correct C kernel that reads a non-contiguous input through its strides (no copy).
EXPECT: pass
TASK: tests/adversarial/tasks/noncontig_tanh.py
CLASS: 0
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void scaled_tanh_strided(const float* x, long sr, long sc, const float* w, float* y,
                         long rows, long cols, float alpha) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * sr + c * sc] * w[c]) * alpha;
}
"""
_LIB = load_library(
    _SRC,
    functions={"scaled_tanh_strided": (None, ["ptr", "long", "long", "ptr", "ptr", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape
        y = torch.empty(rows, cols, dtype=x.dtype)
        sr, sc = x.stride()
        _LIB.scaled_tanh_strided(
            x.data_ptr(), sr, sc, self.weight.data_ptr(), y.data_ptr(), rows, cols, self.alpha
        )
        return y
