"""MoE token permutation: gather each token's hidden state into per-expert contiguous groups.

Given hidden states ``x`` [tokens, hidden] and the router's choices ``topk_ids`` [tokens, k]
(int64, distinct experts per token), every (token, slot) pair becomes one row of

    x_perm [tokens * k, hidden]     rows grouped by expert id; inside a group ordered by token
                                    index, then slot (a stable sort of the flattened ids)
    expert_offsets [experts + 1]    int64; expert e owns rows expert_offsets[e]:expert_offsets[e+1]
    inv_index [tokens, k]           int64; x_perm[inv_index[t, s]] == x[t] (used to un-permute and
                                    combine the expert outputs)

This is the dispatch step of every dropless MoE layer (MegaBlocks, vLLM/SGLang fused-MoE
"moe_align_block_size", DeepSpeed-MoE): after it, each expert's FFN is one dense GEMM over a
contiguous slab. The op is a counting sort on ``tokens * k`` small integers plus a row gather
that moves ``k`` copies of the activations: pure memory traffic, deterministic and exact.
Routing is skewed (some experts hot, some empty), as in real models.
"""

import torch
import torch.nn as nn

CATEGORY = "moe"
# a token's top-k expert ids are distinct: only the hidden states are perturbed or nudged
PERTURB_INPUTS = [0]
SOURCE = "MegaBlocks (Gale et al., 2023) dropless MoE; vLLM fused-MoE token alignment"


class Model(nn.Module):
    """Stable expert-major permutation of (token, slot) pairs, with offsets and inverse index."""

    def __init__(self, num_experts: int):
        super().__init__()
        self.num_experts = num_experts

    def forward(
        self, x: torch.Tensor, topk_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t, k = topk_ids.shape
        flat = topk_ids.reshape(-1)
        # stable sort: equal expert ids keep the flat (token, slot) order
        order = torch.sort(flat, stable=True).indices
        x_perm = x.index_select(0, order // k)
        counts = torch.bincount(flat, minlength=self.num_experts)
        expert_offsets = torch.zeros(self.num_experts + 1, dtype=torch.int64)
        expert_offsets[1:] = torch.cumsum(counts, dim=0)
        inv_index = torch.empty_like(flat)
        inv_index[order] = torch.arange(t * k, dtype=torch.int64)
        return x_perm, expert_offsets, inv_index.view(t, k)


tokens = 4096
hidden = 2048
num_experts = 64
top_k = 2

VARIANTS = [
    {"tokens": 4096, "hidden": 2048, "num_experts": 64, "top_k": 2},  # prefill, top-2
    {"tokens": 1, "hidden": 4096, "num_experts": 8, "top_k": 2},  # decode, batch 1
    {"tokens": 37, "hidden": 1001, "num_experts": 256, "top_k": 8},  # odd sizes, many empty experts
    {"tokens": 1000, "hidden": 96, "num_experts": 60, "top_k": 4},  # narrow rows, more slots
]


def get_inputs():
    x = torch.randn(tokens, hidden) * 3.0
    # skewed routing: a per-expert popularity bias, then k distinct experts per token
    bias = torch.randn(num_experts) * 1.5
    topk_ids = (torch.randn(tokens, num_experts) + bias).topk(top_k, dim=-1).indices
    return [x, topk_ids]


def get_init_inputs():
    return [num_experts]


def flops(x, topk_ids):
    return float(topk_ids.numel() * 4)  # counting sort: histogram, scan, position, inverse


def bytes_moved(x, topk_ids):
    rows = topk_ids.numel()
    # read x once, write k copies; read ids, write inverse index and offsets
    return float(x.numel() * 4 + rows * x.shape[1] * 4 + rows * 16 + (num_experts + 1) * 8)
