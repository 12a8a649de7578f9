"""RMSNorm in numba: one parallel pass per row block, float64 row sums, fused scale by weight.

Rows are spread over threads with ``prange``; within a row the sum of squares is accumulated in
float64 (the task's rows reach 5120 elements, and float32 accumulation would drift past the
tolerance on the wide-range inputs), then one pass writes ``x * inv_rms * weight``.
"""

import math

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, fastmath=False, cache=True)
def _rmsnorm(x, w, y, eps):
    rows, dim = x.shape
    for r in numba.prange(rows):
        acc = 0.0
        for c in range(dim):
            v = np.float64(x[r, c])
            acc += v * v
        inv = np.float32(1.0 / math.sqrt(acc / dim + eps))
        for c in range(dim):
            y[r, c] = x[r, c] * inv * w[c]


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.contiguous().view(-1, x.shape[-1])
        y = torch.empty_like(x2)
        _rmsnorm(x2.numpy(), self.weight.detach().contiguous().numpy(), y.numpy(), self.eps)
        return y.view(x.shape)
