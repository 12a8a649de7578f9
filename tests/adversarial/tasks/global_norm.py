"""Adversarial test task that needs a reduction over the whole tensor: y = x / ||x||_2 * gain."""

import torch
import torch.nn as nn

CATEGORY = "normalization"
SOURCE = "kernelarena adversarial tests"

n = 100000

VARIANTS = [{"n": 100000}, {"n": 3}, {"n": 4099}]


class Model(nn.Module):
    def __init__(self, gain: float):
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.linalg.vector_norm(x) * self.gain


def get_inputs():
    return [torch.randn(n)]


def get_init_inputs():
    return [3.0]
