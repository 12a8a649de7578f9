"""Flat GEMM for LLM decode: ``y = x @ weight.T`` with only a few tokens (M = 1..16) per call.

In the decode phase a linear layer sees M = batch * 1 new tokens, so the GEMM is "flat": M is 1-16
while N and K are in the thousands. FlashDecoding++ (Hong et al., 2024) points out that kernels tiled
for square GEMMs pad M up to their tile height (wasting most of the work) and re-read the weight; the
op is bound by streaming the weight once. The right kernel reads each weight row exactly once, for
all M tokens at a time, and reduces over K in registers. Headline shape: 8 tokens through the
Llama-7B MLP up-projection (4096 -> 11008).
"""

import math

import torch
import torch.nn as nn

CATEGORY = "matmul"
SOURCE = "FlashDecoding++ (Hong et al., 2024): flat GEMM for decode-phase linear layers"


class Model(nn.Module):
    """A bias-free Linear layer applied to a handful of decode tokens."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t()


tokens = 8
in_features = 4096
out_features = 11008

# First entry: the headline shape (8 decode tokens, Llama-7B MLP up-projection).
VARIANTS = [
    {"tokens": 8, "in_features": 4096, "out_features": 11008},
    {"tokens": 1, "in_features": 4096, "out_features": 4096},  # batch-1 decode, attention projection
    {"tokens": 16, "in_features": 2048, "out_features": 2048},  # largest flat M
    {"tokens": 13, "in_features": 1001, "out_features": 777},  # odd sizes: no tile divides them
    {"tokens": 3, "in_features": 37, "out_features": 5},  # tiny: tails only
]


def get_inputs():
    return [torch.randn(tokens, in_features) * 3.0]


def get_init_inputs():
    return [in_features, out_features]


def flops(x):
    return 2.0 * x.shape[0] * x.shape[1] * out_features


def bytes_moved(x):
    # the weight dominates: read it once, plus x once and y once
    return 4.0 * (out_features * x.shape[1] + x.numel() + x.shape[0] * out_features)
