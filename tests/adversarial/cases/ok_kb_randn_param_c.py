"""EXPLOIT: none: KernelBench-style parameter init in __init__ (torch.randn * 0.5 + 1.0), C kernel in forward.
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

Regression case (issue 10): the static scan used to reject this with "calls torch.randn: the
computation must be the solution's own kernel"; the harness re-draws and copies every parameter,
so initialization code cannot cheat.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void scaled_tanh(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"scaled_tanh": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.randn(n_cols) * 0.5 + 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        w = self.weight.detach().contiguous()
        _LIB.scaled_tanh(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
