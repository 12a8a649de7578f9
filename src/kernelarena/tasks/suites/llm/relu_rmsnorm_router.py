"""BlockFFN router: ReLU-activated router logits normalized by RMSNorm over the experts.

For ``x`` [tokens, hidden], router weight ``weight`` [experts, hidden] and RMSNorm gain
``norm_weight`` [experts]:

    a = relu(x @ weight^T)                                   [tokens, experts]
    gates = a / sqrt(mean(a^2, dim=-1) + eps) * norm_weight  [tokens, experts]

Returns the dense gate matrix. BlockFFN (Song et al., 2025) replaces the non-differentiable top-k
of softmax routers with this ReLU + RMSNorm router: it is fully differentiable, sparsity comes
from ReLU (about half the gates are exactly zero here; training adds a sparsity penalty), and the
number of active experts varies per token. The op is a skinny GEMM (experts << hidden) followed by
a per-row nonlinearity and reduction; a fused kernel applies ReLU and the RMS normalization in the
GEMM epilogue while a token's row of logits is still in registers, instead of writing logits,
ReLU output and normalized gates as separate tensors.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "moe"
SOURCE = "BlockFFN (Song et al., 2025): ReLU + RMSNorm differentiable router"
# The gates are float32 dot products over `hidden` (up to 4096) signed terms, divided by the row's
# RMS: measured against float64, torch's own float32 result reaches ~4e-6 * rms(gates) and a GEMM
# with another summation order ~6e-6 * rms on x8/outlier inputs, too close to the default 1e-5.
ATOL = 5e-5
RTOL = 1e-4


class Model(nn.Module):
    """Dense gates: RMSNorm(ReLU(router logits)) over the expert dimension."""

    def __init__(self, hidden: int, num_experts: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(num_experts, hidden))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default init
        self.norm_weight = nn.Parameter(torch.ones(num_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(F.linear(x, self.weight))
        inv_rms = torch.rsqrt(a.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return a * inv_rms * self.norm_weight


tokens = 4096
hidden = 2048
num_experts = 64

VARIANTS = [
    {"tokens": 4096, "hidden": 2048, "num_experts": 64},  # prefill
    {"tokens": 1, "hidden": 4096, "num_experts": 64},  # decode, batch 1
    {"tokens": 37, "hidden": 1001, "num_experts": 37},  # odd sizes
    {"tokens": 513, "hidden": 768, "num_experts": 160},  # many small experts, not a tile multiple
]


def get_inputs():
    return [torch.randn(tokens, hidden) * 3.0]


def get_init_inputs():
    return [hidden, num_experts, 1e-6]


def flops(x):
    t, d = x.shape
    return float(2 * t * d * num_experts + 6 * t * num_experts)  # GEMM + relu, square, sum, scales


def bytes_moved(x):
    t, d = x.shape
    # read x, the router weight and the gain once; write the dense gates
    return float(x.numel() * 4 + num_experts * (d + 1) * 4 + t * num_experts * 4)
