"""Memory hog: allocates 100 GB in forward (the worker's limit must stop it with a memory reason)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        big = torch.empty(100 * (1 << 30), dtype=torch.uint8)
        big.fill_(1)
        return x
