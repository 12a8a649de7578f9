"""EXPLOIT: none: parameters built by a helper function (nn.init, torch.sigmoid) called only from __init__; numba kernel.
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

``_make_weight`` uses torch compute, but only ``__init__`` calls it: forward cannot reach it, so
the static compute rules do not apply there.
"""

import math

import numba
import torch
import torch.nn as nn


def _make_weight(n: int) -> torch.Tensor:
    w = torch.empty(n)
    nn.init.uniform_(w, -2.0, 2.0)
    return torch.sigmoid(w) * 2.0


@numba.njit(parallel=True, cache=True)
def _scaled_tanh(x, w, y, alpha):
    for r in numba.prange(x.shape[0]):
        for c in range(x.shape[1]):
            y[r, c] = math.tanh(x[r, c] * w[c]) * alpha


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(_make_weight(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _scaled_tanh(x.numpy(), self.weight.detach().contiguous().numpy(), y.numpy(), self.alpha)
        return y
