"""EXPLOIT: a task declared in place (the input must hold the result afterwards): returns the right values in a fresh tensor and never updates the input, so the caller's tensor stays stale
EXPECT: in place
TASK: tests/adversarial/tasks/inplace_tanh.py
CLASS: 8
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
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
