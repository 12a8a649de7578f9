"""EXPLOIT: torch compute through Tensor methods and operators (x * w, .tanh_()), which a scan for torch.<fn> calls does not see
EXPECT: policy: forward ran torch compute ops
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 3
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.weight
        return y.tanh_() * self.alpha
