"""A pure copy of a 24 MiB float32 tensor: 48 MiB moved per call (read + write), no compute.

Used by the % of roofline test: under cold-cache timing a streaming copy must land near the
machine's measured memory bandwidth. 24 MiB stays below the workers' 32 MiB mmap threshold, so the
output's pages are re-used from the heap instead of faulted in fresh on every call.
"""

import torch
import torch.nn as nn

n = 6 << 20
VARIANTS = [{"n": 6 << 20}, {"n": 1001}]


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def get_inputs():
    return [torch.randn(n)]


def get_init_inputs():
    return []


def flops(x):
    return 0.0


def bytes_moved(x):
    return 2.0 * x.numel() * x.element_size()
