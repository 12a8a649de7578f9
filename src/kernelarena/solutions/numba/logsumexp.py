"""Row log-sum-exp in numba: online max-and-sum in one pass (float64 sum), parallel over rows.

Each row keeps a running maximum ``m`` and ``s = sum exp(x - m)``; when a larger element arrives
the sum is rescaled by ``exp(m_old - m_new)``. One read of the row instead of two (max, then sum),
which matters for the vocabulary-wide rows (32k-128k floats) of this task.
"""

import math

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, fastmath=False, cache=True)
def _lse(x, out):
    rows, cols = x.shape
    for r in numba.prange(rows):
        m = -np.inf
        s = 0.0
        for c in range(cols):
            v = np.float64(x[r, c])
            if v > m:
                s = s * math.exp(m - v) + 1.0
                m = v
            else:
                s += math.exp(v - m)
        out[r] = np.float32(m + math.log(s))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.contiguous().view(-1, x.shape[-1])
        out = torch.empty(x2.shape[0], dtype=x.dtype)
        _lse(x2.numpy(), out.numpy())
        return out.view(x.shape[:-1])
