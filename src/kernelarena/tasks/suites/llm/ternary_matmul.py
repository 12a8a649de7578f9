"""Ternary-weight matmul (BitNet b1.58): ``y = scale * (x @ W.T)`` with ``W`` in {-1, 0, +1}.

BitNet b1.58 and the MatMul-free LM train weights that are ternary with one absmean scale per
tensor, so a linear layer needs no multiplications at all: every output is a sum of the activations
whose weight is +1 minus the sum of those whose weight is -1, times one scale. At 2 bits per weight
the decode-time weight traffic is 16x below fp32. Activations stay fp32 here (the float variant; no
activation quantization), so the result is compared with a float64 reference.

Storage (buffers):
  ``qweight`` uint8 [N, K // 4]: the code ``c = w + 1`` (0, 1 or 2; 3 is unused) of input channel
      ``4j + i`` sits in bits ``2i .. 2i+1`` of ``qweight[n, j]`` (the lowest bit pair first).
      Requires ``K % 4 == 0``.
  ``weight_scale`` float32 [1]: the per-tensor absmean scale (``mean(|W_fp|)`` at quantization).
"""

import torch
import torch.nn as nn

CATEGORY = "quantized-matmul"
SOURCE = "BitNet b1.58 (Ma et al., 2024) / MatMul-free LM (Zhu et al., 2024): ternary-weight linear layer"


class Model(nn.Module):
    """Linear layer with 2-bit packed ternary weights and a per-tensor scale."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        assert in_features % 4 == 0
        code = torch.randint(0, 3, (out_features, in_features), dtype=torch.uint8)  # w + 1
        c = code.view(out_features, in_features // 4, 4)
        self.register_buffer("qweight", c[..., 0] | (c[..., 1] << 2) | (c[..., 2] << 4) | (c[..., 3] << 6))
        self.register_buffer("weight_scale", torch.tensor([0.02]))

    def ternary_weight(self) -> torch.Tensor:
        """Return W [N, K] with values in {-1, 0, +1} as int8."""
        shifts = torch.tensor([0, 2, 4, 6], dtype=torch.uint8)
        code = (self.qweight[..., None] >> shifts) & 3  # [N, K/4, 4]
        return code.flatten(1).to(torch.int8) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.ternary_weight().to(x.dtype)
        return (x @ w.t()) * self.weight_scale.to(x.dtype)


tokens = 8
in_features = 4096
out_features = 2048

# First entry: the headline shape (8 decode tokens, hidden 4096 -> 2048 outputs).
VARIANTS = [
    {"tokens": 8, "in_features": 4096, "out_features": 2048},
    {"tokens": 1, "in_features": 4096, "out_features": 11008},  # batch-1 decode, MLP up-projection
    {"tokens": 64, "in_features": 2048, "out_features": 512},  # a short prefill chunk
    {"tokens": 37, "in_features": 1004, "out_features": 1001},  # odd sizes (K % 8 != 0)
    {"tokens": 2, "in_features": 12, "out_features": 5},  # tiny: tails only
]


def get_inputs():
    return [torch.randn(tokens, in_features) * 3.0]


def get_init_inputs():
    return [in_features, out_features]


def flops(x):
    return 2.0 * x.shape[0] * x.shape[1] * out_features  # as a matmul (the kernel only adds)


def bytes_moved(x):
    return out_features * x.shape[1] / 4.0 + 4.0 + 4.0 * (x.numel() + x.shape[0] * out_features)
