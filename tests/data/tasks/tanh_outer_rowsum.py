"""Test task with a MEMORY_BUDGET: ``out[i] = sum_j tanh(x[i] * y[j])``.

The reference materializes the ``[n, m]`` matrix (16 MiB at the headline); a fused kernel needs
none of it. ``MEMORY_BUDGET`` (bytes, the constant form) allows 1 MiB added per call.
"""

import torch
import torch.nn as nn

n = 1024
m = 4096
VARIANTS = [{"n": 1024, "m": 4096}, {"n": 37, "m": 101}]
MEMORY_BUDGET = 1 << 20


class Model(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x[:, None] * y[None, :]).sum(dim=1)


def get_inputs():
    return [torch.randn(n), torch.randn(m)]


def get_init_inputs():
    return []
