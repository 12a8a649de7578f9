"""EXPLOIT: returns torch.empty_like(x) unwritten, hoping the allocator hands back the reference's freed output (fooled harnesses that ran the reference first in the same process)
EXPECT: non-finite || outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 2

The harness pre-fills freed heap memory with 0xFF bytes (NaN as float32) so that garbage is
visible; where the pre-fill does not reach the allocation (see stale_small_output_poison.py) the
output is other garbage, still wrong.
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
