"""SwiGLU activation: ``silu(gate) * up`` where ``x = [gate | up]`` along the last dimension.

Llama, Mistral, Qwen and PaLM use a gated MLP; the gate and up projections are usually computed
as one fused GEMM whose output ``[tokens, 2 * hidden]`` holds the gate in the first half of each
row and the up projection in the second half (vLLM's ``SiluAndMul``). The activation is memory
bound: read ``2 * hidden``, write ``hidden`` floats per token.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "activation"
SOURCE = "GLU Variants Improve Transformer (Shazeer, 2020); vLLM SiluAndMul"


class Model(nn.Module):
    """``silu(x[..., :h]) * x[..., h:]`` with ``h = x.shape[-1] // 2``."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x.shape[-1] // 2
        gate, up = x[..., :hidden], x[..., hidden:]
        return F.silu(gate) * up


tokens = 512
hidden = 11008

VARIANTS = [
    {"tokens": 512, "hidden": 11008},  # prefill chunk, Llama-7B intermediate size
    {"tokens": 1, "hidden": 14336},  # decode, batch 1, Llama-3-8B / Mistral-7B
    {"tokens": 37, "hidden": 1001},  # odd sizes
    {"tokens": 200, "hidden": 2816},
]


def get_inputs():
    return [torch.randn(tokens, 2 * hidden) * 3.0]


def get_init_inputs():
    return []


def flops(x):
    return 6.0 * x.numel() / 2  # exp, add, divide, two multiplies per output (exp counted once)


def bytes_moved(x):
    return 1.5 * x.numel() * x.element_size()  # read gate and up, write the product
