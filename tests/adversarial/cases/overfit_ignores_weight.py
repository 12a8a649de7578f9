"""EXPLOIT: ignores the weight parameter because the task initialises it to ones (passes any harness that keeps the default init)
EXPECT: outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 9
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st_noweight(const float* x, float* y, long n, float alpha) {
  for (long i = 0; i < n; ++i) y[i] = tanhf(x[i]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st_noweight": (None, ["ptr", "ptr", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st_noweight(x.data_ptr(), y.data_ptr(), x.numel(), self.alpha)
        return y
