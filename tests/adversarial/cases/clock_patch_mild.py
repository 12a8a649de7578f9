"""EXPLOIT: slows the worker's bound clock (the timing ops module's _perf_ns, reached through sys.modules without naming either) to 60% of real time: every timed call reports 0.6x its duration, a fake 1.67x speedup
EXPECT: tamper: harness internals were replaced && kernelarena.timing.worker_ops._perf_ns
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 10
EXPECT_STAGE: bench

The clock is a pure scaling (monotonic, consistent), so spans and per-call times agree with each other.
What stops it: the worker captures the harness modules' functions and bound clocks before any candidate code runs
and compares them after every request (timing batches included); a replaced ``_perf_ns`` makes the
reply a tamper error, so no time measured with it is used. Limit: a clock patched natively (the
vDSO's clock_gettime rewritten from C) is outside what in-process checks see; the parent's
wall-clock cross-check then bounds the span only.
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

# the launcher stub is __main__; the timed loop and its bound clock live in the timing ops module,
# found by its package name
_worker = getattr(sys, "mod" + "ules").get("kernelarena.timing." + "wor" + "ker_ops")
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
