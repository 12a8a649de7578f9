"""EXPLOIT: none: a correct kernel that allocates zeroed outputs (torch.zeros) and accumulates into them.
EXPECT: pass
TASK: tests/adversarial/tasks/multi_output.py
CLASS: 0
"""

import numba
import torch
import torch.nn as nn


@numba.njit(cache=True)
def _center(x, y, mean, scale):
    rows, cols = x.shape
    for r in range(rows):
        for c in range(cols):
            mean[r] += x[r, c] / cols  # accumulates into the zeroed output (float32)
        for c in range(cols):
            y[r, c] += (x[r, c] - mean[r]) * scale


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        y = torch.zeros_like(x)
        mean = torch.zeros(x.shape[0], dtype=x.dtype)
        _center(x.numpy(), y.numpy(), mean.numpy(), self.scale)
        return y, mean
