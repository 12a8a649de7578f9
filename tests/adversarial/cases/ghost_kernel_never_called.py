"""EXPLOIT: a "ghost" kernel: a C kernel is compiled and loaded (so the file looks like an optimized solution), but forward never calls it and computes with torch Tensor methods instead
EXPECT: policy: forward ran torch compute ops && were not called in this call: a ghost kernel
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 3

The worker counts the calls of the solution's ctypes entry points (functions of a module-level
library, or ctypes functions bound to module globals) in each verified call; under policy
strict the torch compute rejects the case and the reason says the compiled kernel never ran
(lenient: the same text is a flag). Numba and Triton entry points are not counted (limit).
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).tanh_() * self.alpha
