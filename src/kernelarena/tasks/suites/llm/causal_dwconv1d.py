"""Short causal depthwise 1-D convolution (+ optional SiLU), as in Mamba, Hyena and RWKV-style blocks.

Mamba's block mixes each channel with its last ``width`` (= 4) time steps before the selective scan:
``y[b, d, t] = act(bias[d] + sum_j weight[d, j] * x[b, d, t - (width - 1) + j])`` with zeros before
``t = 0``. PyTorch runs it as a grouped ``conv1d`` with padding (then slices off the acausal tail
and applies SiLU in another pass); the dedicated kernel (``causal-conv1d``) is one streaming pass
with the ``width`` taps held in registers and the activation fused.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "convolution"
SOURCE = "Mamba (Gu & Dao, 2023) causal_conv1d; Hyena (Poli et al., 2023) short filters"


class Model(nn.Module):
    """Depthwise causal conv over the last axis of x [batch, dim, seq]; weight [dim, width], bias [dim]."""

    def __init__(self, dim: int, width: int, use_silu: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim, width) / math.sqrt(width))
        self.bias = nn.Parameter(torch.randn(dim) * 0.5)
        self.use_silu = bool(use_silu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = self.weight.shape[1]
        y = F.conv1d(x, self.weight.unsqueeze(1), self.bias, padding=width - 1, groups=x.shape[1])
        y = y[..., : x.shape[-1]]
        return F.silu(y) if self.use_silu else y


batch = 2
dim = 2048
seq = 1024
width = 4
use_silu = 1

# First entry: the headline shape (Mamba block: 2 sequences of 1024 tokens, 2048 channels).
VARIANTS = [
    {"batch": 2, "dim": 2048, "seq": 1024, "width": 4, "use_silu": 1},
    {"batch": 1, "dim": 1536, "seq": 1, "width": 4, "use_silu": 1},  # one step (decode without state)
    {"batch": 3, "dim": 37, "seq": 1001, "width": 3, "use_silu": 0},  # odd sizes, no activation
    {"batch": 2, "dim": 100, "seq": 2, "width": 4, "use_silu": 1},  # fewer steps than taps
    {"batch": 1, "dim": 5, "seq": 3001, "width": 5, "use_silu": 1},  # long rows, an uncommon width
]


def get_inputs():
    return [torch.randn(batch, dim, seq) * 3.0]


def get_init_inputs():
    return [dim, width, use_silu]


def flops(x):
    return (2.0 * width + (4.0 if use_silu else 0.0)) * x.numel()


def bytes_moved(x):
    return 4.0 * (2 * x.numel() + dim * (width + 1))
