"""H2O heavy-hitter scores: causal attention probabilities accumulated per key over recent queries.

H2O (Zhang et al., 2023) keeps in the KV cache the "heavy hitters": the keys that have received
the most attention so far. Its eviction policy is driven by the accumulated attention score of
every cached key, summed over the queries seen. For the last ``q_len`` queries ``q``
[batch, heads, q_len, head_dim] (positions ``seq - q_len .. seq - 1``; ``q_len == seq`` is a whole
prefill) and all keys ``k`` [batch, heads, seq, head_dim]:

    probs[i, j] = softmax_j(q_i . k_j / sqrt(head_dim))  over the keys j <= position of query i
    score[j]    = sum_i probs[i, j]

Returns ``score`` [batch, heads, seq] (float32). Only this continuous score is computed; the top-k
selection of heavy hitters that H2O then applies is not part of the output. Eager PyTorch
materializes the full [q_len, seq] logits and probabilities (half of them masked); a fused kernel
computes only the causal triangle, block by block, and reduces the probabilities over the queries
while they are in registers/L2.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "kv-cache"
SOURCE = "H2O: Heavy-Hitter Oracle (Zhang et al., NeurIPS 2023); accumulated attention scores"
# Softmax turns the absolute rounding error of the float32 logits (~1e-7 of sum|q_i k_i|) into
# the same relative error of the probabilities; with x32 outliers in both q and k a logit reaches
# ~1e3 and torch's own float32 result was measured at up to ~2e-4 relative off float64, so
# RTOL = 1e-3 keeps a ~5x margin. ATOL 1e-5 of the rms covers keys with negligible attention.
ATOL = 1e-5
RTOL = 1e-3


class Model(nn.Module):
    """Per-key sum of causal softmax attention probabilities over the given queries."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q_len, seq, d = q.shape[-2], k.shape[-2], k.shape[-1]
        logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # [b, h, q_len, seq]
        pos_q = torch.arange(seq - q_len, seq).unsqueeze(-1)
        pos_k = torch.arange(seq).unsqueeze(0)
        logits = logits.masked_fill(pos_k > pos_q, float("-inf"))
        return torch.softmax(logits, dim=-1).sum(dim=-2)


batch = 1
heads = 8
seq = 768
q_len = 768
head_dim = 128

VARIANTS = [
    {"batch": 1, "heads": 8, "seq": 768, "q_len": 768, "head_dim": 128},  # whole prefill
    {"batch": 2, "heads": 4, "seq": 1001, "q_len": 64, "head_dim": 64},  # block of recent queries
    {"batch": 4, "heads": 8, "seq": 2048, "q_len": 1, "head_dim": 128},  # one decode step
    {"batch": 1, "heads": 3, "seq": 37, "q_len": 37, "head_dim": 80},  # odd, tiny prefill
    {"batch": 1, "heads": 2, "seq": 300, "q_len": 133, "head_dim": 96},  # q_len not a block multiple
]


def get_inputs():
    q = torch.randn(batch, heads, q_len, head_dim)
    k = torch.randn(batch, heads, seq, head_dim)
    return [q, k]


def get_init_inputs():
    return []


def flops(q, k):
    b, h, s, d = k.shape
    ql = q.shape[-2]
    visible = ql * (s - ql) + ql * (ql + 1) / 2  # causal (query, key) pairs
    return float(b * h * visible * (2 * d + 4))


def bytes_moved(q, k):
    b, h, s, _ = k.shape
    return float((q.numel() + k.numel()) * 4 + b * h * s * 4)
