"""EXPLOIT: computes in place in the input buffer and returns the input itself (no allocation, no write traffic; KernelBench accepted this)
EXPECT: alias: output 0 shares storage with input 0
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 8
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st_inplace(float* x, const float* w, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) x[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st_inplace": (None, ["ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _LIB.st_inplace(x.data_ptr(), self.weight.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return x
