"""EXPLOIT: none: a correct numba kernel with a parallel (prange) reduction over the whole tensor.
EXPECT: pass
TASK: tests/adversarial/tasks/global_norm.py
CLASS: 0

The sum of squares is a prange reduction variable accumulated in float64; a second parallel loop
scales. Partial sums are combined by numba in a fixed order for a fixed thread count.
"""

import math

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, fastmath=False, cache=True)
def _normalize(x, y, gain):
    acc = 0.0
    for i in numba.prange(x.shape[0]):
        v = np.float64(x[i])
        acc += v * v
    s = gain / math.sqrt(acc)
    for i in numba.prange(x.shape[0]):
        y[i] = np.float32(x[i] * s)


class ModelNew(nn.Module):
    def __init__(self, gain: float):
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _normalize(x.numpy(), y.numpy(), self.gain)
        return y
