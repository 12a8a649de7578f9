"""T-MAC style 2-bit GEMV: ``y = x @ dequant(W).T`` with weights stored as bit planes for table lookup.

T-MAC (Wei et al., 2024) runs low-bit LLMs on CPUs without dequantizing: the weight is split into
one-bit planes, every group of 4 activations gets a 16-entry table of its possible partial sums
(``T[p] = sum_i bit_i(p) * x[4j + i]``), and the GEMV becomes table lookups indexed by the 4-bit
patterns of each plane, with the planes combined by powers of two. Lookups replace multiplies and
cost the same for any bit width. The reference below just dequantizes and multiplies.

Storage (buffers; ``BITS = 2``, codes ``q`` are unsigned 0..3, ``q = bit0 + 2 * bit1``):
  ``qplanes`` uint8 [BITS, K // 4, ceil(N / 2)], laid out for SIMD lookups across output channels:
      plane ``b``, activation group ``j`` (input channels ``4j .. 4j+3``) and output channel ``n``
      hold the 4-bit pattern ``p = sum_i bit_b(q[n, 4j + i]) << i``; channel ``n`` is the LOW
      nibble of ``qplanes[b, j, n // 2]`` when ``n`` is even and the HIGH nibble when it is odd
      (the unused high nibble of an odd-N row is 0).
  ``scales``, ``zeros`` float32 [K // group_size, N]: per-group scale and zero point.
Dequantization: ``W[n, k] = (q[n, k] - zeros[k // g, n]) * scales[k // g, n]``.
Requires ``K % group_size == 0`` and ``group_size % 4 == 0``.
"""

import torch
import torch.nn as nn

CATEGORY = "quantized-matmul"
SOURCE = "T-MAC (Wei et al., 2024): table-lookup low-bit GEMV on CPUs"

BITS = 2


def pack_planes(q: torch.Tensor) -> torch.Tensor:
    """Pack unsigned codes ``q`` [N, K] (values < 2**BITS) into the ``qplanes`` layout."""
    n, k = q.shape
    planes = []
    for b in range(BITS):
        bits = ((q >> b) & 1).view(n, k // 4, 4)
        pattern = bits[..., 0] | (bits[..., 1] << 1) | (bits[..., 2] << 2) | (bits[..., 3] << 3)
        pattern = pattern.t().contiguous()  # [K/4, N]
        if n % 2:
            pattern = torch.cat([pattern, torch.zeros(k // 4, 1, dtype=torch.uint8)], dim=1)
        planes.append(pattern[:, 0::2] | (pattern[:, 1::2] << 4))
    return torch.stack(planes)


class Model(nn.Module):
    """Linear layer with 2-bit bit-plane weights; the reference dequantizes explicitly."""

    def __init__(self, in_features: int, out_features: int, group_size: int):
        super().__init__()
        assert in_features % group_size == 0 and group_size % 4 == 0
        self.group_size = group_size
        self.out_features = out_features
        q = torch.randint(0, 2**BITS, (out_features, in_features), dtype=torch.uint8)
        self.register_buffer("qplanes", pack_planes(q))
        groups = in_features // group_size
        self.register_buffer("scales", torch.rand(groups, out_features) * 0.05 + 0.01)
        self.register_buffer("zeros", torch.rand(groups, out_features) * 2.0 + 0.5)

    def dequantize(self) -> torch.Tensor:
        """Return W^T [K, N] in the scales' dtype."""
        planes = self.qplanes  # [BITS, K/4, ceil(N/2)]
        nib = torch.stack([planes & 0xF, planes >> 4], dim=-1).flatten(2)[..., : self.out_features]
        shifts = torch.arange(4, dtype=torch.uint8).view(1, 1, 4, 1)
        bits = (nib.unsqueeze(2) >> shifts) & 1  # [BITS, K/4, 4, N]: bit b of q[n, 4j + i]
        q = bits[0]
        for b in range(1, BITS):
            q = q | (bits[b] << b)
        groups, n = self.scales.shape
        q = q.reshape(groups, self.group_size, n).to(self.scales.dtype)
        w = (q - self.zeros[:, None, :]) * self.scales[:, None, :]
        return w.reshape(groups * self.group_size, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.dequantize()


tokens = 1
in_features = 4096
out_features = 2048
group_size = 128

# First entry: the headline shape (batch-1 decode, hidden 4096 -> 2048 outputs, group 128).
VARIANTS = [
    {"tokens": 1, "in_features": 4096, "out_features": 2048, "group_size": 128},
    {"tokens": 1, "in_features": 2048, "out_features": 5504, "group_size": 64},  # MLP-like, group 64
    {"tokens": 4, "in_features": 4096, "out_features": 1024, "group_size": 128},  # a few tokens
    {"tokens": 3, "in_features": 384, "out_features": 1001, "group_size": 128},  # odd N
    {"tokens": 1, "in_features": 96, "out_features": 37, "group_size": 32},  # tiny: tails only
]


def get_inputs():
    return [torch.randn(tokens, in_features) * 3.0]


def get_init_inputs():
    return [in_features, out_features, group_size]


def flops(x):
    return 2.0 * x.shape[0] * x.shape[1] * out_features


def bytes_moved(x):
    groups = x.shape[1] // group_size
    weight = BITS * out_features * x.shape[1] / 8.0 + 2 * 4.0 * out_features * groups
    return weight + 4.0 * (x.numel() + x.shape[0] * out_features)
