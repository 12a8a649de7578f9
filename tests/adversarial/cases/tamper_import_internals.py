"""EXPLOIT: imports the harness's own modules (kernelarena.verify.compare) and replaces the comparison with one that always agrees
EXPECT: static: line && imports harness internals
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 6
"""

import torch
import torch.nn as nn

import kernelarena.verify.compare as _cmp

_cmp.compare = lambda *args, **kwargs: _cmp.Comparison(True)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
