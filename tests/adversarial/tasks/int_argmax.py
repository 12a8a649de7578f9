"""Adversarial test task with an integer output: the index of each row's maximum (first on ties).

A discrete decision: the reference is computed in the native dtype (float64 cannot flip it here,
but the task says so explicitly).
"""

import torch
import torch.nn as nn

CATEGORY = "reduction"
SOURCE = "kernelarena adversarial tests"
FLOAT64_REFERENCE = False

rows = 256
cols = 500

VARIANTS = [{"rows": 256, "cols": 500}, {"rows": 1, "cols": 31}, {"rows": 97, "cols": 1003}]


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(x, dim=-1)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
