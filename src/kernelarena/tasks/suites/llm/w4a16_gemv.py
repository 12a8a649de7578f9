"""W4A16 weight-only int4 GEMV: ``y = x @ dequant(W).T`` for 1-4 decode tokens (AWQ/GPTQ style).

Decode is bound by reading weights, so LLM serving stores them as 4-bit integers with a scale and a
zero point per group of ``group_size`` input channels (AWQ, GPTQ): 8x less traffic than fp32. The win
only materialises if the kernel dequantizes in registers while it streams the packed weight; the
eager reference below builds the full fp32 matrix first, exactly what a fused kernel avoids.

Storage (buffers):
  ``qweight`` uint8 [N, K // 2]: two 4-bit codes per byte; input channel ``2j`` is the LOW nibble of
      ``qweight[n, j]`` and channel ``2j + 1`` the HIGH nibble. Codes are unsigned, 0..15.
  ``scales``  float32 [N, K // group_size]: per-group scale.
  ``zeros``   float32 [N, K // group_size]: per-group zero point (a float, as after AWQ's scaling).
Dequantization: ``W[n, k] = (q[n, k] - zeros[n, k // g]) * scales[n, k // g]``.
Requires ``K % group_size == 0`` and an even ``group_size``.
"""

import torch
import torch.nn as nn

CATEGORY = "quantized-matmul"
SOURCE = "AWQ (Lin et al., 2024) / GPTQ (Frantar et al., 2023): group-wise int4 weight-only GEMV (W4A16)"


class Model(nn.Module):
    """Linear layer with group-quantized 4-bit weights; dequantizes explicitly, then matmuls."""

    def __init__(self, in_features: int, out_features: int, group_size: int):
        super().__init__()
        assert in_features % group_size == 0 and group_size % 2 == 0
        self.group_size = group_size
        q = torch.randint(0, 16, (out_features, in_features), dtype=torch.uint8)
        self.register_buffer("qweight", q[:, 0::2] | (q[:, 1::2] << 4))
        groups = in_features // group_size
        self.register_buffer("scales", torch.rand(out_features, groups) * 0.02 + 0.005)
        self.register_buffer("zeros", torch.randint(4, 12, (out_features, groups)).float())

    def dequantize(self) -> torch.Tensor:
        n = self.qweight.shape[0]
        q = torch.stack([self.qweight & 0xF, self.qweight >> 4], dim=-1).view(n, -1, self.group_size)
        w = (q.to(self.scales.dtype) - self.zeros[..., None]) * self.scales[..., None]  # per group
        return w.view(n, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.dequantize().t()


tokens = 1
in_features = 4096
out_features = 2048
group_size = 128

# First entry: the headline shape (batch-1 decode, hidden 4096 -> 2048 outputs, group 128).
VARIANTS = [
    {"tokens": 1, "in_features": 4096, "out_features": 2048, "group_size": 128},
    {"tokens": 4, "in_features": 4096, "out_features": 1024, "group_size": 64},  # 4 tokens, group 64
    {"tokens": 1, "in_features": 2048, "out_features": 5504, "group_size": 128},  # MLP-like aspect
    {"tokens": 3, "in_features": 704, "out_features": 1001, "group_size": 64},  # odd N, K = 11 groups
    {"tokens": 2, "in_features": 128, "out_features": 37, "group_size": 128},  # one group, tiny N
]


def get_inputs():
    return [torch.randn(tokens, in_features) * 3.0]


def get_init_inputs():
    return [in_features, out_features, group_size]


def flops(x):
    return 2.0 * x.shape[0] * x.shape[1] * out_features


def bytes_moved(x):
    groups = x.shape[1] // group_size
    weight = out_features * x.shape[1] / 2.0 + 2 * 4.0 * out_features * groups  # codes + scales + zeros
    return weight + 4.0 * (x.numel() + x.shape[0] * out_features)
