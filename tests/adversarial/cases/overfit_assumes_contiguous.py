"""EXPLOIT: ignores strides: reads the input's memory as if it were row-major (right for every contiguous test input, wrong for a transposed view)
EXPECT: outside tolerance
TASK: tests/adversarial/tasks/noncontig_tanh.py
CLASS: 9
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape
        y = torch.empty(rows, cols, dtype=x.dtype)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), rows, cols, self.alpha)
        return y
