"""EXPLOIT: a clock patch that hides half of every call and gives the time back between calls: per-call times are halved while the batch span stays true, so no span-versus-wall check can notice
EXPECT: tamper: harness internals were replaced && kernelarena.timing.worker_ops._perf_ns
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 10
EXPECT_STAGE: bench

How: forward measures its own real duration d and adds d/2 to a debt; the first clock read after
forward returns (the harness's t1) is real time minus the debt; the next read (the next call's t0,
or the end of the batch) pays the debt back, so the clock is monotonic and the span is exact.
The timing ops module (kernelarena.timing.worker_ops, where the timed loop reads its clock) is reached
through sys.modules by its package name, without naming either.
What stops it: the identity check of the worker's bound clocks after every request (timing
batches included) turns the reply into a tamper error. Limit: a native clock patch (vDSO) is out of
reach of in-process checks; the parent then only bounds the batch span by its own wall clock.
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
_real = getattr(_worker, "_perf_ns", None)
_STATE = {"debt": 0, "fresh_exit": False}


def _clock() -> int:
    now = _real()
    if _STATE["fresh_exit"]:  # the read right after forward returned: t1
        _STATE["fresh_exit"] = False
        return now - _STATE["debt"]
    _STATE["debt"] = 0  # any later read: pay the debt back
    return now


if _real is not None:
    setattr(_worker, "_perf_ns", _clock)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = _real() if _real is not None else 0
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        if _real is not None:
            _STATE["debt"] += (_real() - start) // 2
            _STATE["fresh_exit"] = True
        return y
