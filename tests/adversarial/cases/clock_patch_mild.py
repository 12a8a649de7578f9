"""EXPLOIT: slows the worker's bound clock (__main__._perf_ns, reached without naming sys.modules) to 60% of real time: every timed call reports 0.6x its duration, a fake 1.67x speedup
EXPECT: timer:
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 10
EXPECT_STAGE: bench
GAP: the parent's wall-clock cross-check only rejects a worker that reports more time than elapsed, or a batch span under half the parent's wall time minus 20 ms; a clock slowed to 0.6x passes both, and per-call times measured inside the candidate's process cannot be trusted once its code can reach the clock

The clock is a pure scaling (monotonic, consistent), so spans and per-call times agree with each other.
"""

import sys

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

_worker = getattr(sys, "mod" + "ules").get("__" + "main__")
if hasattr(_worker, "_perf_ns"):
    _real = getattr(_worker, "_perf_ns")
    setattr(_worker, "_perf_ns", lambda: _real() * 3 // 5)


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
