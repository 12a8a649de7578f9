"""EXPLOIT: output computed asynchronously after return by a worker thread that already existed before the call (pool started at import)
EXPECT: escape: || non-finite || outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 5

Regression case: the escape guard only looked for Python threads that did not exist before the
call, so work queued to a pre-existing thread that finished while the guards ran passed; the
worker now snapshots the outputs the moment forward returns.
"""

import queue
import threading
import time

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
        time.sleep(0.001)  # finish shortly after forward returns, well before the outputs are sent
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
