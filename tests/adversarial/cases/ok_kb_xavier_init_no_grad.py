"""EXPLOIT: none: nn.init.xavier_uniform_/zeros_ on an nn.Linear holder in __init__, a @torch.no_grad() forward, numba kernel.
EXPECT: pass
TASK: tests/adversarial/tasks/linear_relu.py
CLASS: 0
"""

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, cache=True)
def _linear_relu(x, w, b, y, scale):
    n, k = x.shape
    m = w.shape[0]
    for i in numba.prange(n):
        for j in range(m):
            acc = np.float64(b[j])
            for p in range(k):
                acc += np.float64(x[i, p]) * w[j, p]
            y[i, j] = np.float32(acc * scale) if acc > 0 else np.float32(0.0)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.scale = scale

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.linear.weight.contiguous()
        y = torch.empty(x.shape[0], w.shape[0], dtype=x.dtype)
        _linear_relu(x.numpy(), w.numpy(), self.linear.bias.contiguous().numpy(), y.numpy(), self.scale)
        return y
