"""EXPLOIT: reads its uninitialised output as an accumulator (y = fmaxf(y, v)): NaN garbage happens to give the right answer, other garbage does not
EXPECT: second run on the same inputs || outside tolerance || non-finite
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 2

fmaxf(NaN, v) == v, so with 0xFF-filled memory (NaN) the result is right; the harness's second run
on 0x3C-filled memory (0.0115 as float32) exposes the read of uninitialised memory. When the
pre-fill misses the allocation (small outputs, see stale_small_output_poison.py) the first run
already reads zeros or stale data and fails the comparison outright, which is also right.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void fmax_acc(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = fmaxf(y[r * cols + c], tanhf(x[r * cols + c] * w[c]) * alpha);
}
"""
_LIB = load_library(_SRC, functions={"fmax_acc": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.fmax_acc(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
