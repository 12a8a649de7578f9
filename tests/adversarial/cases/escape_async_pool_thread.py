"""EXPLOIT: output computed asynchronously after return by a worker thread that already existed before the call (pool started at import)
EXPECT: escape:
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 5
GAP: the escape guard only looks for Python threads that did not exist before the call; work queued to a pre-existing thread and finished while the guards run (before the outputs are read) passes, although the output was not complete when forward returned

A fix: digest the outputs when forward returns and again after the guards (or a short wait); any
change means work continued after the call.
"""

import queue
import threading

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
_JOBS: queue.Queue = queue.Queue()


def _worker():
    while True:
        job = _JOBS.get()
        _LIB.st(*job)


threading.Thread(target=_worker, daemon=True, name="prestarted-pool").start()


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))
        self._keep: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        self._keep = [x, y]  # keep the buffers alive for the thread
        _JOBS.put((x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha))
        return y
