"""Adversarial test task with only an integer input: a histogram (bincount) of token ids.

Integer inputs are nudged by copying one element's value onto another (ids stay in range).
"""

import torch
import torch.nn as nn

CATEGORY = "reduction"
SOURCE = "kernelarena adversarial tests"

n = 20000
bins = 512

VARIANTS = [{"n": 20000, "bins": 512}, {"n": 1, "bins": 7}, {"n": 3001, "bins": 100}]


class Model(nn.Module):
    def __init__(self, n_bins: int):
        super().__init__()
        self.n_bins = n_bins

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.bincount(tokens, minlength=self.n_bins)


def get_inputs():
    return [torch.randint(0, bins, (n,))]


def get_init_inputs():
    return [bins]


def flops(tokens):
    return float(tokens.numel())


def bytes_moved(tokens):
    return 8.0 * tokens.numel()
