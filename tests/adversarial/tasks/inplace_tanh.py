"""Adversarial test task declared in place (IN_PLACE = True): x <- tanh(x * w) * alpha, returned.

The output is allowed to alias the input; the input is expected to hold the result afterwards.
"""

import torch
import torch.nn as nn

CATEGORY = "activation"
SOURCE = "kernelarena adversarial tests"
IN_PLACE = True

rows = 32
cols = 200

VARIANTS = [{"rows": 32, "cols": 200}, {"rows": 1, "cols": 33}, {"rows": 5, "cols": 999}]


class Model(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.ones(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(self.weight).tanh_().mul_(self.alpha)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return [1.25, cols]
