"""EXPLOIT: none: a helper class wraps the C library (built lazily, cached), held in an attribute and called from forward.
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0
"""

import functools

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void run(const float* x, const float* w, float* y, long n, long cols, float alpha) {
  for (long i = 0; i < n; ++i) y[i] = tanhf(x[i] * w[i % cols]) * alpha;
}
"""


@functools.lru_cache(maxsize=1)
def _lib():
    return load_library(_SRC, functions={"run": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ScaledTanhKernel:
    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _lib().run(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.numel(), w.numel(), self.alpha)
        return y


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(n_cols) + 0.5)
        self.kernel = ScaledTanhKernel(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.kernel(x, self.weight.detach().contiguous())
