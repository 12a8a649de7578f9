"""Adversarial test task: the mean square of a whole tensor (16 MiB read, one scalar written).

A reduction to one value is where a one-element nudge between timed calls barely moves the
answer (here by ~1e-6 relative), so a stale result still passes the sampled checks of timed calls:
the case for the physical-floor guard (`tests/adversarial/cases/floor_memo_fingerprint.py`).
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
    return 4.0 * x.numel() + 4.0
