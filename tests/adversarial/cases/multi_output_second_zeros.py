"""EXPLOIT: multi-output task, only the first output computed, the second left at zeros (a checker that compares output[0] only would pass it)
EXPECT: output[1] && outside tolerance
TASK: tests/adversarial/tasks/multi_output.py
CLASS: 1
"""

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(cache=True)
def _center(x, y, scale):
    rows, cols = x.shape
    for r in range(rows):
        s = 0.0
        for c in range(cols):
            s += np.float64(x[r, c])
        m = s / cols
        for c in range(cols):
            y[r, c] = (x[r, c] - m) * scale


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        y = torch.empty_like(x)
        _center(x.numpy(), y.numpy(), self.scale)
        return y, torch.zeros(x.shape[0], dtype=x.dtype)
