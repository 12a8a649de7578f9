"""EXPLOIT: returns torch.empty_like(x) unwritten; judged on the small (1x77) variant, whose 308-byte output the harness's sentinel pre-fill should poison (NaN) like the large ones
EXPECT: variant rows=1,cols=77 && 77 element(s) hold the harness's sentinel
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 2

The cheat is rejected either way (its output is garbage); the test asks that the garbage be the
harness's poison, i.e. that the stale-memory defence works by design and not by luck.
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)
