"""EXPLOIT: identity / passthrough (a fresh copy of the input) instead of the activation
EXPECT: outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 1
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()
