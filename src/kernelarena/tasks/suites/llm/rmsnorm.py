"""RMSNorm: ``y = x / sqrt(mean(x^2, -1) + eps) * weight`` over the last dimension.

Every Llama/Mistral/Qwen block runs it twice per layer (before attention and before the MLP) and
once before the LM head. It is purely memory bound: one read of the activations, one write, a
row reduction in between. Eager PyTorch spends several passes (square, mean, rsqrt, two multiplies)
and temporaries; a fused kernel does it in one read-reduce pass plus one scale pass over a row that
is still in cache.
"""

import torch
import torch.nn as nn

CATEGORY = "normalization"
SOURCE = "RMSNorm (Zhang & Sennrich, 2019); Llama (Touvron et al., 2023)"


class Model(nn.Module):
    """RMSNorm with a learned per-channel ``weight`` (no bias), as in Llama."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * inv_rms * self.weight


rows = 2048
dim = 2048

# First entry: the headline shape (prefill of 2048 tokens, hidden 2048).
VARIANTS = [
    {"rows": 2048, "dim": 2048},
    {"rows": 1, "dim": 4096},  # decode, batch 1, Llama-7B hidden size
    {"rows": 37, "dim": 1001},  # odd sizes: no multiple of any vector width
    {"rows": 300, "dim": 5120},  # Llama-13B hidden size
    {"rows": 5, "dim": 3},  # tiny rows: tail handling only
]


def get_inputs():
    return [torch.randn(rows, dim) * 3.0]


def get_init_inputs():
    return [dim, 1e-6]


def flops(x):
    return 4.0 * x.numel()  # square+add for the sum, then scale by inv_rms and weight


def bytes_moved(x):
    return 2.0 * x.numel() * x.element_size() + x.shape[-1] * 4.0  # read x, write y, read weight
