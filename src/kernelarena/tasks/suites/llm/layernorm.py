"""LayerNorm over the last dimension with learned ``weight`` and ``bias``.

GPT-2/GPT-NeoX/Falcon/Phi/Whisper-style models normalise with LayerNorm twice per block. Like
RMSNorm it is memory bound, but it needs both the mean and the variance of each row; a numerically
safe kernel subtracts the mean before squaring (rows here carry a per-row offset, so the naive
``E[x^2] - E[x]^2`` in float32 loses digits).
"""

import torch
import torch.nn as nn

CATEGORY = "normalization"
SOURCE = "Layer Normalization (Ba, Kiros & Hinton, 2016); GPT-2 (Radford et al., 2019)"


class Model(nn.Module):
    """``nn.LayerNorm(dim)``: parameters ``weight`` and ``bias`` (the harness re-draws both)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


rows = 1536
dim = 4096

VARIANTS = [
    {"rows": 1536, "dim": 4096},  # prefill chunk, hidden 4096 (output 24 MiB)
    {"rows": 1, "dim": 2048},  # decode, batch 1
    {"rows": 37, "dim": 1001},  # odd sizes
    {"rows": 260, "dim": 768},  # GPT-2 small hidden size
    {"rows": 3, "dim": 7},
]


def get_inputs():
    # per-row offsets (activations are not zero-mean) on top of a wide spread
    return [torch.randn(rows, dim) * 3.0 + torch.randn(rows, 1) * 8.0]


def get_init_inputs():
    return [dim, 1e-5]


def flops(x):
    return 7.0 * x.numel()  # mean, centre, square+sum, normalise, affine


def bytes_moved(x):
    return 2.0 * x.numel() * x.element_size() + 2.0 * x.shape[-1] * 4.0  # x, y, weight, bias
