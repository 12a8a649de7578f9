"""LoRA linear layer ``y = x W^T + scale * (x A^T) B^T`` (the forward pass of LoRA fine-tuning).

In LoRA fine-tuning every adapted projection runs the frozen base GEMM plus a rank-``r`` side path.
Eager frameworks launch the side path as three more kernels (``x A^T``, ``(.) B^T``, scale-and-add),
which re-read ``x`` and read/write the full ``[tokens, out]`` output again; for ranks 8-64 these
memory passes cost a sizeable fraction of the base GEMM. LoRAFusion fuses the low-rank path into
the base GEMM's tiles so ``x`` is read once and the output is written once. ``lora_B`` is drawn
non-zero here (LoRA initialises it to zero, which would make the side path untestable).
"""

import math

import torch
import torch.nn as nn

CATEGORY = "fine-tuning"
SOURCE = "LoRAFusion (Zhu et al., 2025); LoRA (Hu et al., 2022)"


class Model(nn.Module):
    """Frozen base weight [out, in] plus LoRA factors A [r, in], B [out, r], scaled by alpha / r."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))
        self.lora_A = nn.Parameter(torch.randn(rank, in_features) / math.sqrt(in_features))
        self.lora_B = nn.Parameter(torch.randn(out_features, rank) / math.sqrt(rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = x @ self.weight.t()
        low_rank = (x @ self.lora_A.t()) @ self.lora_B.t()
        return base + self.scale * low_rank


batch = 4
seq = 128
in_features = 2048
out_features = 2048
rank = 16

# First entry: the headline shape (a 512-token fine-tuning micro-batch through a 2048x2048 projection).
VARIANTS = [
    {"batch": 4, "seq": 128, "in_features": 2048, "out_features": 2048, "rank": 16},
    {"batch": 1, "seq": 1, "in_features": 1024, "out_features": 3072, "rank": 8},  # one token
    {"batch": 3, "seq": 37, "in_features": 1001, "out_features": 333, "rank": 5},  # odd everything
    {"batch": 2, "seq": 64, "in_features": 600, "out_features": 37, "rank": 64},  # out < one tile
]


def get_inputs():
    return [torch.randn(batch, seq, in_features) * 3.0]


def get_init_inputs():
    return [in_features, out_features, rank, 2.0 * rank]


def flops(x):
    tokens = x.numel() // in_features
    return 2.0 * tokens * (in_features * out_features + rank * (in_features + out_features))


def bytes_moved(x):
    tokens = x.numel() // in_features
    params = out_features * in_features + rank * (in_features + out_features)
    return 4.0 * (x.numel() + params + tokens * out_features)
