"""EXPLOIT: none: a correct kernel split over Python threads started in forward and joined before it returns.
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

The C kernel releases the GIL (ctypes), so the row blocks run concurrently; nothing outlives the call.
"""

import threading

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void rows_block(const float* x, const float* w, float* y, long r0, long r1, long cols, float alpha) {
  for (long r = r0; r < r1; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(
    _SRC, functions={"rows_block": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "float"])}
)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        rows, cols = x.shape
        y = torch.empty_like(x)
        bounds = [rows * k // 2 for k in range(3)]
        args = (x.data_ptr(), self.weight.data_ptr(), y.data_ptr())
        threads = [
            threading.Thread(target=_LIB.rows_block, args=(*args, bounds[k], bounds[k + 1], cols, self.alpha))
            for k in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return y
