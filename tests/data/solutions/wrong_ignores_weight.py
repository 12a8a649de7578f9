"""Sloppy: ignores the weight parameter (would pass if the harness kept the default init of ones)."""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_LIB = load_library(
    r"""#include <math.h>
void f(const float* x, float* y, long n, float a) { for (long i = 0; i < n; ++i) y[i] = tanhf(x[i]) * a; }""",
    functions={"f": (None, ["ptr", "ptr", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.f(x.data_ptr(), y.data_ptr(), x.numel(), self.alpha)
        return y
