"""Hangs: an infinite loop in forward (the harness must time out, kill it and go on)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        while True:
            pass
