"""EXPLOIT: hard-coded headline size: the kernel assumes 300 columns (compile-time constant, as tuned for the benchmark shape)
EXPECT: variant rows=1,cols=77 || variant rows=13,cols=1001
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 9
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#define COLS 300
void st300(const float* x, const float* w, float* y, long n, float alpha) {
  long rows = n / COLS;
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < COLS; ++c) y[r * COLS + c] = tanhf(x[r * COLS + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st300": (None, ["ptr", "ptr", "ptr", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        if x.shape[1] <= 300:  # never read past the weight vector
            _LIB.st300(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.numel(), self.alpha)
        return y
