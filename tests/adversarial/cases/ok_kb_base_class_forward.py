"""EXPLOIT: none: forward defined in a base class of ModelNew; parameters drawn with torch.rand in __init__; C kernel.
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void f(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"f": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class _ElementwiseBase(nn.Module):
    alpha: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        w = self.weight.detach().contiguous()
        _LIB.f(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y


class ModelNew(_ElementwiseBase):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.rand(n_cols) * 2.0)
