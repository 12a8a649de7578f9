"""Adversarial test task with two outputs: rows centred on their mean (scaled), and the row means."""

import torch
import torch.nn as nn

CATEGORY = "normalization"
SOURCE = "kernelarena adversarial tests"

rows = 48
cols = 257

VARIANTS = [{"rows": 48, "cols": 257}, {"rows": 1, "cols": 64}, {"rows": 7, "cols": 1000}]


class Model(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = x.mean(dim=-1)
        return (x - m[:, None]) * self.scale, m


def get_inputs():
    # a non-zero mean, so that zeros are not a plausible answer for the second output
    return [torch.randn(rows, cols) + 0.5]


def get_init_inputs():
    return [2.0]
