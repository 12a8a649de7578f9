"""Native Sparse Attention (NSA), selected-block branch.

NSA splits the keys into blocks of ``block_size`` positions and lets each query position, per KV
head group, attend only to a few selected blocks (chosen upstream from compressed-attention
scores). This task is that selection branch with the choice given as an input:

  * q: [batch, n_q_heads, seq, head_dim]; k, v: [batch, n_kv_heads, seq, head_dim] (float32);
    query head h reads KV head h // group, group = n_q_heads // n_kv_heads (GQA).
  * block_idx: int64 [batch, n_kv_heads, seq, n_sel], the blocks selected for query position t of
    that KV group, shared by all ``group`` query heads (NSA's group-wise selection). Entries are
    distinct block numbers in [0, ceil(seq / block_size)) or -1 for "no block" (padding when
    fewer blocks exist). The inputs always include block t // block_size and block 0.
  * Query t attends to the keys i of its selected blocks with i <= t (causal):
        out[b, h, t] = softmax(q[b, h, t] . k[b, h // group, i] / sqrt(head_dim)) @ v
    over those keys. Blocks after t's own contribute nothing.

Indices are an input, so there are no selection ties to worry about. A good kernel loads each
selected K/V block once per (position, KV group) and uses it for all ``group`` query heads, the
hardware-aligned layout that makes NSA fast; the reference instead builds a dense seq x seq mask.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "attention"
# the selected block ids of a query are distinct and causal: only q, k, v are perturbed or nudged
PERTURB_INPUTS = [0, 1, 2]
SOURCE = "Native Sparse Attention (Yuan et al., 2025)"
# Scale-relative term: softmax turns absolute logit error into relative weight error, and float32
# logit rounding grows with |logit| (inputs x8 -> logits x64; x32 outliers in q and k -> x1024
# products). torch's own float32 result measured up to ~2.6e-4 * rms off float64 (head_dim 128,
# outliers); 1e-3 leaves margin; wrong masks, scales or block choices are off by >= 0.5 * rms.
ATOL = 1e-3
RTOL = 1e-4


class Model(nn.Module):
    """Causal attention restricted to per-(position, KV group) selected key blocks."""

    def __init__(self, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_idx: torch.Tensor
    ) -> torch.Tensor:
        b, n_q, s, d = q.shape
        n_kv = k.shape[1]
        group = n_q // n_kv
        bs = self.block_size
        n_blocks = (s + bs - 1) // bs
        chosen = torch.zeros(b, n_kv, s, n_blocks + 1, dtype=torch.bool, device=q.device)
        chosen.scatter_(-1, torch.where(block_idx >= 0, block_idx, n_blocks), True)  # -1 -> spare column
        key_ok = chosen[..., :n_blocks].repeat_interleave(bs, dim=-1)[..., :s]  # [b, n_kv, s, s]
        pos = torch.arange(s, device=q.device)
        key_ok = (key_ok & (pos[None, :] <= pos[:, None])).unsqueeze(2)  # [b, n_kv, 1, s, s]

        qg = q.view(b, n_kv, group, s, d)
        scores = torch.matmul(qg, k.unsqueeze(2).transpose(-1, -2)) / math.sqrt(d)  # [b, n_kv, group, s, s]
        scores = scores.masked_fill(~key_ok, float("-inf"))
        out = torch.matmul(torch.softmax(scores, dim=-1), v.unsqueeze(2))
        return out.reshape(b, n_q, s, d)


batch = 1
n_q_heads = 8
n_kv_heads = 1
seq = 1024
head_dim = 64
block_size = 32
n_sel = 8

VARIANTS = [
    {"batch": 1, "n_q_heads": 8, "n_kv_heads": 1, "seq": 1024, "head_dim": 64, "block_size": 32, "n_sel": 8},
    {"batch": 2, "n_q_heads": 8, "n_kv_heads": 2, "seq": 1001, "head_dim": 128, "block_size": 64, "n_sel": 4},
    {"batch": 1, "n_q_heads": 6, "n_kv_heads": 2, "seq": 300, "head_dim": 80, "block_size": 24, "n_sel": 5},
    {"batch": 2, "n_q_heads": 3, "n_kv_heads": 3, "seq": 77, "head_dim": 37, "block_size": 16, "n_sel": 3},
    {
        "batch": 1,
        "n_q_heads": 4,
        "n_kv_heads": 1,
        "seq": 50,
        "head_dim": 32,
        "block_size": 16,
        "n_sel": 6,
    },  # n_sel > blocks
]


def get_inputs() -> list:
    q = torch.randn(batch, n_q_heads, seq, head_dim)
    k = torch.randn(batch, n_kv_heads, seq, head_dim)
    v = torch.randn(batch, n_kv_heads, seq, head_dim) * 3.0
    # Random distinct earlier-or-current blocks per (b, kv head, position); own block and block 0 first.
    n_blocks = (seq + block_size - 1) // block_size
    pos_block = torch.arange(seq) // block_size
    prio = torch.rand(batch, n_kv_heads, seq, n_blocks)
    prio[..., 0] += 2.0
    prio[:, :, torch.arange(seq), pos_block] += 3.0
    prio = prio.masked_fill(torch.arange(n_blocks)[None, :] > pos_block[:, None], -1.0)
    k_sel = min(n_sel, n_blocks)
    val, idx = prio.topk(k_sel, dim=-1)
    idx = torch.where(val >= 0, idx, -1)
    if k_sel < n_sel:
        idx = torch.cat([idx, idx.new_full((batch, n_kv_heads, seq, n_sel - k_sel), -1)], dim=-1)
    return [q, k, v, idx]


def get_init_inputs() -> list:
    return [block_size]


def _pairs_per_kv_head(block_idx: torch.Tensor) -> torch.Tensor:
    """(query, key) pairs attended per (b, kv head), counting the causal cut of each block."""
    s = block_idx.shape[2]
    t = torch.arange(s).view(1, 1, s, 1)
    start = block_idx * block_size
    end = torch.minimum(start + block_size, t + 1).clamp(max=s)  # causal cut and end of sequence
    n = (end - start).clamp(min=0)
    return torch.where(block_idx >= 0, n, 0).sum()


def flops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_idx: torch.Tensor) -> float:
    # block_size is the module global (set per variant), as in get_init_inputs.
    group = q.shape[1] // k.shape[1]
    d = q.shape[-1]
    return float(_pairs_per_kv_head(block_idx)) * group * (4 * d + 5)


def bytes_moved(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_idx: torch.Tensor) -> float:
    fl = (2 * q.numel() + k.numel() + v.numel()) * q.element_size()
    return float(fl + block_idx.numel() * block_idx.element_size())
