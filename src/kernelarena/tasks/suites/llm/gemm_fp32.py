"""Plain fp32 GEMM ``C = A @ B`` at LLM shapes (a prefill chunk through a projection).

Every transformer layer is mostly GEMMs; this is the baseline the quantized and flat variants are
measured against. A fast CPU GEMM packs A and B into cache-sized panels (Goto & van de Geijn, 2008;
BLIS) and runs a register-tiled micro-kernel that keeps a block of C in vector registers while it
streams packed panels from L1/L2. The eager baseline is oneDNN/MKL, which is close to peak, so this
task measures how near a hand-written kernel gets to a vendor BLAS.
"""

import torch
import torch.nn as nn

CATEGORY = "matmul"
SOURCE = "Goto & van de Geijn (2008) / BLIS (Van Zee & van de Geijn, 2015): packed, register-tiled GEMM"


class Model(nn.Module):
    """C = A @ B for row-major fp32 A [M, K] and B [K, N]."""

    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


m = 512
k = 1024
n = 1024

# First entry: the headline shape (a 512-token prefill chunk through a 1024x1024 projection).
VARIANTS = [
    {"m": 512, "k": 1024, "n": 1024},
    {"m": 1, "k": 2048, "n": 512},  # a single row (decode)
    {"m": 77, "k": 1001, "n": 333},  # odd sizes: no tile divides them
    {"m": 300, "k": 37, "n": 515},  # short K: tails in every loop
    {"m": 256, "k": 2048, "n": 768},  # deeper K: several K blocks
]


def get_inputs():
    return [torch.randn(m, k) * 3.0, torch.randn(k, n) * 3.0]


def get_init_inputs():
    return []


def flops(a, b):
    return 2.0 * a.shape[0] * a.shape[1] * b.shape[1]


def bytes_moved(a, b):
    return 4.0 * (a.numel() + b.numel() + a.shape[0] * b.shape[1])
