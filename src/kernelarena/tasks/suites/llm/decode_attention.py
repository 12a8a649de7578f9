"""Single-token decode attention over a KV cache.

At every generation step an LLM computes, for each (batch, head), the attention of ONE new query
against all cached keys and values:

    out[b, h, :] = softmax(q[b, h, :] @ K[b, h, :, :]^T / sqrt(head_dim)) @ V[b, h, :, :]

q: [batch, heads, head_dim], K and V: [batch, heads, seq, head_dim] (float32), out like q.
The op reads the whole KV cache once per token and does only ~2 FLOPs per byte, so it is bound
by memory bandwidth; with few (batch, head) pairs a kernel must also split the sequence across
cores (FlashDecoding's split-K) and merge the partial softmax results, which FlashDecoding++
streamlines with a unified maximum. This is the dominant cost of long-context generation.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "attention"
SOURCE = "FlashDecoding (Dao et al., 2023); FlashDecoding++ (Hong et al., 2024)"
# Scale-relative term: softmax turns absolute logit error into relative weight error, and float32
# logit rounding grows with |logit| (inputs x8 -> logits x64; x32 outliers in q and k -> x1024
# products). torch's own float32 result measured up to ~7e-5 * rms off float64 here; 5e-4 leaves
# margin; wrong masks, scales, selections or a dropped key are off by >= 0.03 * rms.
ATOL = 5e-4
RTOL = 1e-4


class Model(nn.Module):
    """softmax(q K^T / sqrt(d)) V for one query per (batch, head)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = torch.matmul(q.unsqueeze(-2), k.transpose(-1, -2)) * scale  # [b, h, 1, s]
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, v).squeeze(-2)  # [b, h, d]


batch = 4
heads = 16
seq = 2048
head_dim = 128

VARIANTS = [
    {"batch": 4, "heads": 16, "seq": 2048, "head_dim": 128},
    {"batch": 1, "heads": 8, "seq": 4099, "head_dim": 128},  # batch 1: needs split-K
    {"batch": 3, "heads": 5, "seq": 1001, "head_dim": 80},
    {"batch": 2, "heads": 3, "seq": 37, "head_dim": 37},
]


def get_inputs() -> list:
    q = torch.randn(batch, heads, head_dim)
    k = torch.randn(batch, heads, seq, head_dim)
    v = torch.randn(batch, heads, seq, head_dim) * 3.0
    return [q, k, v]


def get_init_inputs() -> list:
    return []


def flops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    b, h, s, d = k.shape
    return float(b * h * s * (4 * d + 5))  # q.k, p*v, and ~5 for scale/max/exp/sum


def bytes_moved(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    return float((2 * q.numel() + k.numel() + v.numel()) * q.element_size())
