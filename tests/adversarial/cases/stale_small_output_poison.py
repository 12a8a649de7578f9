"""EXPLOIT: returns torch.empty_like(x) unwritten; judged on the small (1x77) variant, whose 308-byte output the harness's sentinel pre-fill should poison (NaN) like the large ones
EXPECT: variant rows=1,cols=77 && output: 77 non-finite
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 2
GAP: the 0xFF/0x3C pre-fill (worker._prefill: a few large chunks, filled and freed) does not reach small allocations: glibc serves them from tcache/small bins the pre-fill never touched, so torch.empty returns zeros or stale data (probe in the worker's malloc settings: 0% sentinel bytes for a (1,77) float32 output with either pattern, 100% zero bytes with 0x3C; (64,300): 0.1% sentinel, 54% zeros with 0xFF); a kernel that accumulates into an un-zeroed output passes whenever that memory happens to be zero, and the second-run comparison built to expose it rarely fires

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
