"""GELU with the tanh approximation (GPT-2 ``gelu_new``):
``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))``.

GPT-2, GPT-J, Gemma (``gelu_pytorch_tanh``) and many vision transformers apply it to the
``[tokens, 4 * d]`` output of the first MLP projection. Elementwise and memory bound, but with a
transcendental per element, so a kernel must vectorise ``tanh``/``exp`` to reach bandwidth.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "activation"
SOURCE = "GELU (Hendrycks & Gimpel, 2016); GPT-2 (Radford et al., 2019)"


class Model(nn.Module):
    """``F.gelu(x, approximate="tanh")``."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


tokens = 1024
dim = 6144

VARIANTS = [
    {"tokens": 1024, "dim": 6144},  # prefill chunk, MLP width 4 * 1536 (output 24 MiB)
    {"tokens": 1, "dim": 3072},  # decode, GPT-2 small MLP width
    {"tokens": 37, "dim": 1001},  # odd sizes
    {"tokens": 333, "dim": 4096},
]


def get_inputs():
    return [torch.randn(tokens, dim) * 3.0]


def get_init_inputs():
    return []


def flops(x):
    return 10.0 * x.numel()  # cube, polynomial, tanh (counted as ~5), final multiply


def bytes_moved(x):
    return 2.0 * x.numel() * x.element_size()
