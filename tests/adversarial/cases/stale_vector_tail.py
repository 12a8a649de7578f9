"""EXPLOIT: vectorised loop in steps of 16 with no remainder loop: the last numel % 16 elements are never written; exact on the headline (64x300)
EXPECT: variant rows=1,cols=77 || variant rows=13,cols=1001
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 2
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void by16(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  long n = rows * cols;
  for (long b = 0; b + 16 <= n; b += 16)
    for (long i = b; i < b + 16; ++i) y[i] = tanhf(x[i] * w[i % cols]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"by16": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.by16(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
