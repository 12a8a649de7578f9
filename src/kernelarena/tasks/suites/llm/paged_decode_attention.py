"""Paged decode attention (PagedAttention / vLLM): one decode step over a block-paged KV cache.

Serving engines keep the KV cache in a pool of fixed-size pages so sequences of different
lengths share memory without fragmentation; a block table maps each sequence's logical blocks to
physical pages. This task is the decode step over such a cache, with grouped-query heads:

  * q: [batch, n_q_heads, head_dim] (float32), one new token per sequence;
  * k_cache, v_cache: [num_blocks, block_size, n_kv_heads, head_dim] (float32), the page pool;
  * block_table: int32 [batch, max_blocks]; token position p of sequence b lives in page
    block_table[b, p // block_size], slot p % block_size. Entries past a sequence's last block
    are arbitrary (valid page ids holding other data) and must be ignored;
  * context_lens: int32 [batch], tokens in each sequence (varied, mostly not multiples of
    block_size: slots past the end of the last page hold stale data and must be masked).
  * out[b, h] = softmax(q[b, h] . K_b^T / sqrt(head_dim)) @ V_b over the context_lens[b] tokens
    of sequence b, for KV head h // (n_q_heads // n_kv_heads).

Memory-bound like all decode attention, plus an indirection per page; vAttention argues the
indirection costs little when the kernel gathers whole pages, which is what this tests.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "attention"
SOURCE = "PagedAttention / vLLM (Kwon et al., 2023); vAttention (Prabhu et al., 2025)"
# Scale-relative term: softmax turns absolute logit error into relative weight error, and float32
# logit rounding grows with |logit| (inputs x8 -> logits x64; x32 outliers in q and k -> x1024
# products). torch's own float32 result measured up to ~7e-5 * rms off float64 here; 5e-4 leaves
# margin; wrong masks, scales, selections or a dropped key are off by >= 0.03 * rms.
ATOL = 5e-4
RTOL = 1e-4


class Model(nn.Module):
    """Decode attention reading K/V through a per-sequence block table."""

    def __init__(self) -> None:
        super().__init__()

    def forward(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_table: torch.Tensor,
        context_lens: torch.Tensor,
    ) -> torch.Tensor:
        b, n_q, d = q.shape
        block_size, n_kv = k_cache.shape[1], k_cache.shape[2]
        group = n_q // n_kv
        outs = []
        for i in range(b):
            n = int(context_lens[i])
            pages = block_table[i, : (n + block_size - 1) // block_size].long()
            k = k_cache[pages].reshape(-1, n_kv, d)[:n].permute(1, 2, 0)  # [n_kv, d, n]
            v = v_cache[pages].reshape(-1, n_kv, d)[:n].permute(1, 0, 2)  # [n_kv, n, d]
            qi = q[i].view(n_kv, group, d)
            probs = torch.softmax(torch.matmul(qi, k) / math.sqrt(d), dim=-1)  # [n_kv, group, n]
            outs.append(torch.matmul(probs, v).reshape(n_q, d))
        return torch.stack(outs)


batch = 8
n_q_heads = 32
n_kv_heads = 8
head_dim = 128
block_size = 16
max_context = 2048

VARIANTS = [
    {"batch": 8, "n_q_heads": 32, "n_kv_heads": 8, "head_dim": 128, "block_size": 16, "max_context": 2048},
    {"batch": 1, "n_q_heads": 16, "n_kv_heads": 2, "head_dim": 128, "block_size": 16, "max_context": 3999},
    {"batch": 5, "n_q_heads": 12, "n_kv_heads": 4, "head_dim": 80, "block_size": 32, "max_context": 1001},
    {"batch": 3, "n_q_heads": 3, "n_kv_heads": 3, "head_dim": 37, "block_size": 7, "max_context": 100},
    {"batch": 4, "n_q_heads": 8, "n_kv_heads": 1, "head_dim": 64, "block_size": 16, "max_context": 20},
]


def get_inputs() -> list:
    lens = torch.randint(max(1, max_context // 2), max_context + 1, (batch,), dtype=torch.int32)
    lens[0] = max_context  # the longest sequence sets max_blocks
    n_pages = (lens + block_size - 1) // block_size
    max_blocks = int(n_pages.max())
    num_blocks = int(n_pages.sum()) + int(n_pages.sum()) // 8 + 1  # spare pages hold other data
    perm = torch.randperm(num_blocks).to(torch.int32)
    block_table = torch.randint(0, num_blocks, (batch, max_blocks), dtype=torch.int32)  # unused entries
    start = 0
    for i in range(batch):
        block_table[i, : n_pages[i]] = perm[start : start + n_pages[i]]
        start += int(n_pages[i])
    q = torch.randn(batch, n_q_heads, head_dim)
    k_cache = torch.randn(num_blocks, block_size, n_kv_heads, head_dim)
    v_cache = torch.randn(num_blocks, block_size, n_kv_heads, head_dim) * 3.0
    return [q, k_cache, v_cache, block_table, lens]


def get_init_inputs() -> list:
    return []


def flops(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    context_lens: torch.Tensor,
) -> float:
    n_q, d = q.shape[1], q.shape[2]
    return float(int(context_lens.long().sum()) * n_q * (4 * d + 5))


def bytes_moved(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    context_lens: torch.Tensor,
) -> float:
    # q and out, the K/V rows of the context tokens, the block table and the lengths.
    n_kv, d = k_cache.shape[2], k_cache.shape[3]
    kv = 2 * int(context_lens.long().sum()) * n_kv * d * 4
    return float(2 * q.numel() * 4 + kv + block_table.numel() * 4 + context_lens.numel() * 4)
