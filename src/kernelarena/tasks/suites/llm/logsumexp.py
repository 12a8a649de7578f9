"""Row-wise log-sum-exp over a vocabulary: ``lse[r] = log(sum_v exp(x[r, v]))``.

The normaliser of the softmax over LM-head logits: cross-entropy, sampling, speculative
verification and z-loss (PaLM) all need it, and it is the quantity that online-softmax kernels
(FlashAttention, Cut Cross-Entropy, Liger) carry instead of materialising probabilities. Rows carry
large per-row offsets, so a kernel must subtract the row maximum (naively ``exp`` overflows).
"""

import torch
import torch.nn as nn

CATEGORY = "loss"
SOURCE = "online normaliser (Milakov & Gimelshein, 2018); Llama-2 32000-token vocabulary"


class Model(nn.Module):
    """``torch.logsumexp(x, dim=-1)`` -> ``[rows]``."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(x, dim=-1)


rows = 512
vocab = 32000

VARIANTS = [
    {"rows": 512, "vocab": 32000},  # a batch of positions, Llama-2 vocabulary
    {"rows": 2, "vocab": 128256},  # decode, batch 2, Llama-3 vocabulary
    {"rows": 37, "vocab": 1001},  # odd sizes
    {"rows": 64, "vocab": 50257},  # GPT-2 vocabulary
]


def get_inputs():
    return [torch.randn(rows, vocab) * 3.0 + torch.randn(rows, 1) * 10.0]


def get_init_inputs():
    return []


def flops(x):
    return 4.0 * x.numel()  # max, subtract, exp (counted once), add


def bytes_moved(x):
    return x.numel() * x.element_size() + x.shape[0] * 4.0
