"""EXPLOIT: constant output 1/cols (the mean of every softmax row): right sum, right scale, no work
EXPECT: outside tolerance
TASK: ../shared/examples/softmax_task.py
CLASS: 1
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full(x.shape, 1.0 / x.shape[-1], dtype=x.dtype)
