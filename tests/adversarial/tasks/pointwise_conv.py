"""Test task in KernelBench style: a 1x1 ``nn.Conv2d`` with bias (a GEMM over channels)."""

import torch
import torch.nn as nn

batch = 2
cin = 8
cout = 12
size = 10

VARIANTS = [
    {"batch": 2, "cin": 8, "cout": 12, "size": 10},
    {"batch": 1, "cin": 3, "cout": 5, "size": 7},
    {"batch": 3, "cin": 16, "cout": 4, "size": 5},
]


class Model(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch, cin, size, size)]


def get_init_inputs():
    return [cin, cout]
