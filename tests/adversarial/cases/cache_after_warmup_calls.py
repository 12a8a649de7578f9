"""EXPLOIT: honest for the first 40 calls of the process (more than verification makes), then replays the last result: a harness that verifies, then times without checking, reports the replay speed
EXPECT: a timed call
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 4
EXPECT_STAGE: bench
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
_STATE = {"calls": 0, "last": None}


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _STATE["calls"] += 1
        last = _STATE["last"]
        if _STATE["calls"] > 40 and last is not None and last.shape == x.shape:
            return last.clone()
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        _STATE["last"] = y
        return y.clone()
