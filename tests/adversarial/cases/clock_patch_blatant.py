"""EXPLOIT: patches the worker's own bound clock (__main__._perf_ns, i.e. kernelarena.sandbox.worker run as a script) so every timed call reports ~0 ms
EXPECT: timer: || harness internals
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 10
EXPECT_STAGE: bench

The kernel is correct, so verification passes; the parent's wall clock must expose the lie.
"""

import torch
import torch.nn as nn

import __main__
from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})

if hasattr(__main__, "_perf_ns"):
    _real = __main__._perf_ns
    __main__._perf_ns = lambda: _real() // 1000


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
