"""EXPLOIT: per-instance memo: when called again on the same input buffer, return the previous result (correct in verification, where every case builds a new instance; stale in a timing loop that rotates fixed input buffers)
EXPECT: a timed call
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 10
EXPECT_STAGE: bench

The harness nudges one element of each input before every timed call and checks sampled timed
calls against the reference.
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


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))
        self._memo: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.data_ptr(), tuple(x.shape))
        if key in self._memo:
            return self._memo[key].clone()
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        self._memo[key] = y
        return y.clone()
