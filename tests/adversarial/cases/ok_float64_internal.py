"""EXPLOIT: none: a correct kernel computing in float64 and casting the result back with .to(float32).
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0
"""

import math

import numba
import torch
import torch.nn as nn


@numba.njit(parallel=True, cache=True)
def _kernel(x, w, y, alpha):
    rows, cols = x.shape
    for r in numba.prange(rows):
        for c in range(cols):
            y[r, c] = math.tanh(x[r, c] * w[c]) * alpha


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x64 = x.to(torch.float64).contiguous()
        w64 = self.weight.detach().to(torch.float64)
        y64 = torch.empty(x64.shape, dtype=torch.float64)
        _kernel(x64.numpy(), w64.numpy(), y64.numpy(), self.alpha)
        return y64.to(torch.float32)
