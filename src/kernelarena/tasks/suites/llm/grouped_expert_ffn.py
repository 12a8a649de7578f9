"""Grouped expert FFN: every expert's SwiGLU MLP over its own contiguous slab of tokens.

Tokens arrive already permuted by expert (see ``moe_token_permute``): ``x`` [T, hidden] with
``expert_offsets`` [experts + 1] (int64, non-decreasing, 0 .. T) so that expert e owns rows
``expert_offsets[e]:expert_offsets[e+1]`` (possibly none). Each expert applies

    y = (silu(x @ w1[e]^T) * (x @ w3[e]^T)) @ w2[e]^T

with ``w1, w3`` [experts, ffn, hidden] and ``w2`` [experts, hidden, ffn]; the output ``y`` is
[T, hidden] in the same (permuted) row order. This is the compute of an MoE layer (Mixtral,
DeepSeek-MoE, Qwen-MoE): a batch of small, unevenly sized GEMMs. Eager PyTorch loops over the
experts and launches three GEMMs plus elementwise ops each, materializing both [rows, ffn]
intermediates; a grouped kernel (FlashMoE, MegaBlocks, vLLM fused-MoE) schedules all
(expert, row-block) tiles at once and fuses the SwiGLU between the two GEMMs.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "moe"
SOURCE = "FlashMoE / MegaBlocks (Gale et al., 2023) grouped GEMM; Mixtral SwiGLU experts"
# Two chained float32 GEMMs (hidden, then ffn terms) and a SwiGLU product: measured against
# float64, torch's own float32 output reaches ~3.5e-6 * rms on x8/outlier inputs (outliers make a
# few rows 30x larger than the rms); 2e-5 leaves room for another blocking order.
ATOL = 2e-5
RTOL = 1e-4


class Model(nn.Module):
    """Per-expert SwiGLU FFN over token groups given by ``expert_offsets``."""

    def __init__(self, num_experts: int, hidden: int, ffn: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(num_experts, ffn, hidden) * hidden**-0.5)
        self.w3 = nn.Parameter(torch.randn(num_experts, ffn, hidden) * hidden**-0.5)
        self.w2 = nn.Parameter(torch.randn(num_experts, hidden, ffn) * ffn**-0.5)

    def forward(self, x: torch.Tensor, expert_offsets: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        bounds = expert_offsets.tolist()
        for e in range(self.w1.shape[0]):
            s, t = bounds[e], bounds[e + 1]
            if t > s:
                xe = x[s:t]
                h = F.silu(xe @ self.w1[e].t()) * (xe @ self.w3[e].t())
                out[s:t] = h @ self.w2[e].t()
        return out


num_experts = 8
hidden = 1024
ffn = 1408
tokens = 512

VARIANTS = [
    {"num_experts": 8, "hidden": 1024, "ffn": 1408, "tokens": 512},  # prefill chunk, top-2 of 8
    {"num_experts": 8, "hidden": 1024, "ffn": 1408, "tokens": 2},  # decode: 2 experts active
    {"num_experts": 5, "hidden": 200, "ffn": 333, "tokens": 37},  # odd sizes
    {"num_experts": 16, "hidden": 256, "ffn": 160, "tokens": 1001},  # fine-grained experts, skewed load
]


def get_inputs():
    x = torch.randn(tokens, hidden) * 3.0
    # skewed, random group sizes that sum to `tokens`; the coldest expert gets no token at all
    popularity = torch.rand(num_experts) ** 2
    popularity[torch.argmin(popularity)] = 0.0
    counts = torch.multinomial(popularity + 1e-12, tokens, replacement=True)
    counts = torch.bincount(counts, minlength=num_experts)
    offsets = torch.zeros(num_experts + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(counts, dim=0)
    return [x, offsets]


def get_init_inputs():
    return [num_experts, hidden, ffn]


def flops(x, expert_offsets):
    return float(6 * x.shape[0] * hidden * ffn + 4 * x.shape[0] * ffn)  # 3 GEMMs + SwiGLU


def bytes_moved(x, expert_offsets):
    counts = expert_offsets[1:] - expert_offsets[:-1]
    active = int((counts > 0).sum())
    # read x and the weights of active experts once, write y
    return float(2 * x.numel() * 4 + active * 3 * hidden * ffn * 4)
