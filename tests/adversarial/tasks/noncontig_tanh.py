"""Adversarial test task whose input is non-contiguous (a transposed view): y = tanh(x * w) * alpha."""

import torch
import torch.nn as nn

CATEGORY = "activation"
SOURCE = "kernelarena adversarial tests"

rows = 40
cols = 300

VARIANTS = [{"rows": 40, "cols": 300}, {"rows": 1, "cols": 77}, {"rows": 13, "cols": 1001}]


class Model(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.ones(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x * self.weight) * self.alpha


def get_inputs():
    return [torch.randn(cols, rows).t()]  # shape (rows, cols), column-major strides


def get_init_inputs():
    return [1.5, cols]


def flops(x):
    return 3.0 * x.numel()


def bytes_moved(x):
    return 2.0 * x.numel() * 4
