"""EXPLOIT: all-zeros output for a softmax whose values are ~1/cols: slips under a fixed absolute atol (KernelBench-style allclose(atol=1e-2) accepts it)
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
        return torch.zeros_like(x)
