"""Adversarial test task: the mean square of a whole tensor, with bytes_moved overstated 1000x.

Every honest kernel then looks faster than the physical floor: the implausible-speed path runs
(second verification, timing on never-seen inputs) and must accept it with a flag
(`tests/adversarial/cases/ok_floor_honest_overstated.py`): the control of the physical-floor guard.
"""

import torch
import torch.nn as nn

CATEGORY = "reduction"
SOURCE = "kernelarena adversarial tests"

n = 1 << 22

VARIANTS = [{"n": 1 << 22}, {"n": 4099}, {"n": 1}]


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(2).mean()


def get_inputs():
    return [torch.randn(n)]


def get_init_inputs():
    return []


def flops(x):
    return 2.0 * x.numel()


def bytes_moved(x):
    return 1000.0 * (4.0 * x.numel() + 4.0)  # deliberately wrong: see the docstring
