"""Multi-LoRA linear layer: every token goes through the shared base weight plus its own adapter.

Serving many LoRA fine-tunes of one base model (Punica, S-LoRA) batches requests that use different
adapters: ``y_t = W x_t + scale * B[id_t] A[id_t] x_t``, with adapter id ``-1`` meaning "base model
only". A fast kernel runs the base GEMM once for the whole batch and applies the per-token low-rank
path inside it (Punica's SGMV/BGMV kernels), instead of looping over adapters with masked copies as
an eager implementation (e.g. PEFT's mixed-adapter batches) does. ``adapter_ids`` is int64 [tokens]
with values in ``[-1, n_adapters)``, in no particular order.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "fine-tuning"
SOURCE = "Punica (Chen et al., 2024) SGMV; S-LoRA (Sheng et al., 2024)"


class Model(nn.Module):
    """Base weight [out, in]; adapters A [n_adapters, r, in], B [n_adapters, out, r]; scale alpha / r."""

    def __init__(self, in_features: int, out_features: int, rank: int, n_adapters: int, alpha: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))
        self.lora_A = nn.Parameter(torch.randn(n_adapters, rank, in_features) / math.sqrt(in_features))
        self.lora_B = nn.Parameter(torch.randn(n_adapters, out_features, rank) / math.sqrt(rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor, adapter_ids: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight.t()
        for a in range(self.lora_A.shape[0]):
            rows = (adapter_ids == a).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            xa = x[rows]
            y[rows] += self.scale * ((xa @ self.lora_A[a].t()) @ self.lora_B[a].t())
        return y


tokens = 512
in_features = 2048
out_features = 2048
rank = 16
n_adapters = 16

# First entry: the headline shape (512 tokens from requests using 16 different adapters).
VARIANTS = [
    {"tokens": 512, "in_features": 2048, "out_features": 2048, "rank": 16, "n_adapters": 16},
    {"tokens": 1, "in_features": 1024, "out_features": 1536, "rank": 8, "n_adapters": 4},  # one token
    {"tokens": 77, "in_features": 1001, "out_features": 333, "rank": 5, "n_adapters": 7},  # odd sizes
    {"tokens": 300, "in_features": 256, "out_features": 37, "rank": 32, "n_adapters": 3},  # out < one tile
]


def get_inputs():
    x = torch.randn(tokens, in_features) * 3.0
    ids = torch.randint(-1, n_adapters, (tokens,), dtype=torch.int64)  # -1: no adapter for this token
    return [x, ids]


def get_init_inputs():
    return [in_features, out_features, rank, n_adapters, 2.0 * rank]


def flops(x, adapter_ids):
    with_adapter = int((adapter_ids >= 0).sum())
    return 2.0 * x.shape[0] * in_features * out_features + 2.0 * with_adapter * rank * (
        in_features + out_features
    )


def bytes_moved(x, adapter_ids):
    params = out_features * in_features + n_adapters * rank * (in_features + out_features)
    return 4.0 * (x.numel() + params + x.shape[0] * out_features) + 8.0 * adapter_ids.numel()
