"""Fused residual add + RMSNorm: ``h = x + residual``; returns ``(rmsnorm(h) * weight, h)``.

In a pre-norm transformer every sub-block output is added to the residual stream and the sum is
immediately normalised for the next sub-block; vLLM, TensorRT-LLM and FlashInfer fuse the two
(``fused_add_rms_norm``) because the unfused version reads and writes the hidden states twice.
Two outputs: the normalised activations and the updated residual stream (both must be correct).
"""

import torch
import torch.nn as nn

CATEGORY = "normalization"
SOURCE = "vLLM fused_add_rms_norm; RMSNorm (Zhang & Sennrich, 2019)"


class Model(nn.Module):
    """Residual add followed by RMSNorm with a learned ``weight``."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x + residual
        inv_rms = torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return h * inv_rms * self.weight, h


rows = 1024
dim = 4096

VARIANTS = [
    {"rows": 1024, "dim": 4096},  # prefill chunk, Llama-7B hidden size
    {"rows": 1, "dim": 4096},  # decode, batch 1
    {"rows": 37, "dim": 1001},  # odd sizes
    {"rows": 129, "dim": 2560},
]


def get_inputs():
    # the residual stream grows in magnitude with depth; give it a larger, different scale than x
    return [torch.randn(rows, dim) * 2.0, torch.randn(rows, dim) * 5.0]


def get_init_inputs():
    return [dim, 1e-6]


def flops(x, residual):
    return 5.0 * x.numel()  # add, square+accumulate, two multiplies


def bytes_moved(x, residual):
    return 4.0 * x.numel() * x.element_size() + x.shape[-1] * 4.0  # read x, residual; write y, h
