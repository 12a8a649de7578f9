"""Causal self-attention for the prefill phase.

When a prompt is processed, every token attends to itself and all earlier tokens:

    out[b, h] = softmax(mask(q[b, h] @ k[b, h]^T / sqrt(head_dim))) @ v[b, h]

with mask setting score[i, j] = -inf for j > i. q, k, v, out: [batch, heads, seq, head_dim]
(float32). Prefill is the compute-bound half of LLM inference (time-to-first-token). The
reference materializes the full seq x seq score matrix; FlashAttention instead streams key/value
tiles through fast memory with an online softmax, never writes the score matrix, and skips the
tiles above the diagonal, which halves the work for causal masks.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "attention"
SOURCE = "FlashAttention (Dao et al., 2022); FlashAttention-2 (Dao, 2023)"
# Scale-relative term: softmax turns absolute logit error into relative weight error, and float32
# logit rounding grows with |logit| (inputs x8 -> logits x64; x32 outliers in q and k -> x1024
# products). torch's own float32 result measured up to ~2.6e-4 * rms off float64 (head_dim 128,
# outliers); 1e-3 leaves margin; wrong masks, scales or block choices are off by >= 0.5 * rms.
ATOL = 1e-3
RTOL = 1e-4


class Model(nn.Module):
    """Masked softmax attention with a lower-triangular (causal) mask."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        s = q.shape[-2]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # [b, h, s, s]
        future = torch.triu(torch.ones(s, s, dtype=torch.bool, device=q.device), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)


batch = 1
heads = 4
seq = 1024
head_dim = 64

VARIANTS = [
    {"batch": 1, "heads": 4, "seq": 1024, "head_dim": 64},
    {"batch": 2, "heads": 4, "seq": 1001, "head_dim": 128},
    {"batch": 3, "heads": 3, "seq": 77, "head_dim": 80},
    {"batch": 1, "heads": 2, "seq": 37, "head_dim": 37},
    {"batch": 1, "heads": 1, "seq": 1, "head_dim": 16},  # a single token attends only to itself
]


def get_inputs() -> list:
    q = torch.randn(batch, heads, seq, head_dim)
    k = torch.randn(batch, heads, seq, head_dim)
    v = torch.randn(batch, heads, seq, head_dim) * 3.0
    return [q, k, v]


def get_init_inputs() -> list:
    return []


def flops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    b, h, s, d = q.shape
    pairs = s * (s + 1) / 2  # (query, key) pairs left by the causal mask
    return float(b * h * pairs * (4 * d + 5))


def bytes_moved(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    return float((q.numel() + k.numel() + v.numel() + q.numel()) * q.element_size())
