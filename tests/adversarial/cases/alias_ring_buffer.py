"""EXPLOIT: a ring of two persistent output buffers per shape, alternated call by call: call n+2 overwrites the output of call n
EXPECT: stale: output
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 8

A fix: keep the outputs of every earlier call of the case alive (or three or more calls per case).
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
_RING: dict = {}


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        ring = _RING.setdefault(tuple(x.shape), [torch.empty_like(x), torch.empty_like(x), 0])
        y = ring[ring[2]]
        ring[2] ^= 1
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
