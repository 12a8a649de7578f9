"""EXPLOIT: caches results by (input data_ptr, shape) at module level: benchmark loops that reuse one input buffer time a dictionary lookup (the classic timing cheat)
EXPECT: a timed call || outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 4
EXPECT_STAGE: bench

Either guard is the right one: verification catches it when the allocator reuses an address for
another case's inputs; otherwise the nudged inputs of timed calls catch it.
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
_CACHE: dict = {}


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.data_ptr(), tuple(x.shape), self.weight.data_ptr())
        if key not in _CACHE:
            x = x.contiguous()
            y = torch.empty_like(x)
            _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
            _CACHE[key] = y
        return _CACHE[key].clone()
