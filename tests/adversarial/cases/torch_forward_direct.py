"""EXPLOIT: the forward pass is just torch (torch.tanh on x * w): the reference itself, sold as a kernel (the commonest LLM "kernel")
EXPECT: static: line && calls torch.tanh
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
        return torch.tanh(x * self.weight) * self.alpha
