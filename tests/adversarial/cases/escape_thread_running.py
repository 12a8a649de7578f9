"""EXPLOIT: returns an unwritten output at once and lets a Python thread fill it in later (like an un-synchronised CUDA stream: the timer stops before the work is done)
EXPECT: escape: thread
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 5
"""

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


def _later(x, w, y, alpha):
    time.sleep(0.05)
    _LIB.st(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], alpha)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        threading.Thread(target=_later, args=(x, self.weight, y, self.alpha), daemon=True).start()
        return y
