"""EXPLOIT: none: a correct numba kernel for a non-contiguous input, made contiguous first (an allowed copy).
EXPECT: pass
TASK: tests/adversarial/tasks/noncontig_tanh.py
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
        xc = x.contiguous()
        y = torch.empty(xc.shape, dtype=xc.dtype)
        _kernel(xc.numpy(), self.weight.detach().numpy(), y.numpy(), self.alpha)
        return y
