"""Grouped-query decode attention (GQA) over a KV cache.

Llama-2/3, Mistral, Qwen and most current LLMs store fewer key/value heads than query heads:
n_q_heads = group * n_kv_heads, and query head h reads KV head h // group. For one decode step:

    out[b, h, :] = softmax(q[b, h, :] @ K[b, h // group]^T / sqrt(head_dim)) @ V[b, h // group]

q: [batch, n_q_heads, head_dim]; K, V: [batch, n_kv_heads, seq, head_dim] (float32); out like q.
The reference groups the query heads so each KV head is multiplied by its ``group`` queries at once
(no ``repeat_kv`` copy); a good kernel likewise streams each KV row from memory once, uses it for
all ``group`` query heads, and fuses scores, online softmax and the weighted sum of V in one pass.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "attention"
SOURCE = "GQA (Ainslie et al., 2023); FlashDecoding split-K (Dao et al., 2023)"
# Scale-relative term: softmax turns absolute logit error into relative weight error, and float32
# logit rounding grows with |logit| (inputs x8 -> logits x64; x32 outliers in q and k -> x1024
# products). torch's own float32 result measured up to ~7e-5 * rms off float64 here; 5e-4 leaves
# margin; wrong masks, scales, selections or a dropped key are off by >= 0.03 * rms.
ATOL = 5e-4
RTOL = 1e-4


class Model(nn.Module):
    """Decode attention where each KV head serves ``n_q_heads // n_kv_heads`` query heads."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, n_q, d = q.shape
        n_kv = k.shape[1]
        group = n_q // n_kv
        qg = q.view(b, n_kv, group, d)  # query head h = kv_head * group + g reads kv_head
        scores = torch.matmul(qg, k.transpose(-1, -2)) / math.sqrt(d)  # [b, n_kv, group, s]
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, v).reshape(b, n_q, d)


batch = 4
n_q_heads = 32
n_kv_heads = 8
seq = 4096
head_dim = 128

VARIANTS = [
    {"batch": 4, "n_q_heads": 32, "n_kv_heads": 8, "seq": 4096, "head_dim": 128},
    {"batch": 1, "n_q_heads": 28, "n_kv_heads": 4, "seq": 3001, "head_dim": 128},  # group 7, batch 1
    {"batch": 3, "n_q_heads": 12, "n_kv_heads": 2, "seq": 1001, "head_dim": 64},
    {"batch": 2, "n_q_heads": 5, "n_kv_heads": 5, "seq": 37, "head_dim": 80},  # group 1 (MHA)
    {"batch": 1, "n_q_heads": 16, "n_kv_heads": 1, "seq": 515, "head_dim": 37},  # MQA, odd head_dim
]


def get_inputs() -> list:
    q = torch.randn(batch, n_q_heads, head_dim)
    k = torch.randn(batch, n_kv_heads, seq, head_dim)
    v = torch.randn(batch, n_kv_heads, seq, head_dim) * 3.0
    return [q, k, v]


def get_init_inputs() -> list:
    return []


def flops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    b, hq, d = q.shape
    s = k.shape[2]
    return float(b * hq * s * (4 * d + 5))


def bytes_moved(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    return float((2 * q.numel() + k.numel() + v.numel()) * q.element_size())
