"""Adversarial test task: the mean square of a whole tensor (64 MiB read, one scalar written).

A reduction to one value is where a one-element nudge between timed calls barely moves the
answer (here by ~1e-6 relative), so a stale result still passes the sampled checks of timed calls:
the case for the physical-floor guard (`tests/adversarial/cases/floor_memo_fingerprint.py`).
"""

import torch
import torch.nn as nn

CATEGORY = "reduction"
SOURCE = "kernelarena adversarial tests"

# 64 MiB: the floor (reading it at cache or DRAM bandwidth) stays well above a memo lookup's
# ~0.03 ms whatever bandwidth the machine profile measured (at 16 MiB it was sometimes under 100%)
n = 1 << 24

VARIANTS = [{"n": 1 << 24}, {"n": 4099}, {"n": 1}]


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(2).mean()


def get_inputs():
    return [torch.randn(n) * 3.0]  # mean square ~9: the "ones" canary cannot pass


def get_init_inputs():
    return []


def flops(x):
    return 2.0 * x.numel()


def bytes_moved(x):
    return 4.0 * x.numel() + 4.0
