"""Test task in KernelBench level-2 style: ``relu(x @ W.T + b) * scale`` with an ``nn.Linear``."""

import torch
import torch.nn as nn

batch = 16
in_features = 64
out_features = 48
scale = 1.5

VARIANTS = [
    {"batch": 16, "in_features": 64, "out_features": 48},
    {"batch": 1, "in_features": 33, "out_features": 7},
    {"batch": 5, "in_features": 100, "out_features": 17},
]


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x)) * self.scale


def get_inputs():
    return [torch.randn(batch, in_features)]


def get_init_inputs():
    return [in_features, out_features, scale]
