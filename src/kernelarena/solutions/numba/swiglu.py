"""SwiGLU in numba: ``silu(gate) * up`` in one pass over each row, parallel over rows.

The logistic is evaluated as ``g / (1 + exp(-g))`` in float32 with a guard for large negative
``g`` (where ``exp(-g)`` overflows to inf and the quotient is the correct -0.0 anyway).
"""

import math

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, fastmath=False, cache=True)
def _swiglu(x, y, hidden):
    rows = x.shape[0]
    for r in numba.prange(rows):
        for c in range(hidden):
            g = x[r, c]
            y[r, c] = np.float32(g / (np.float32(1.0) + np.float32(math.exp(-g)))) * x[r, hidden + c]


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x.shape[-1] // 2
        x2 = x.contiguous().view(-1, x.shape[-1])
        y = torch.empty(x2.shape[0], hidden, dtype=x.dtype)
        _swiglu(x2.numpy(), y.numpy(), hidden)
        return y.view(*x.shape[:-1], hidden)
