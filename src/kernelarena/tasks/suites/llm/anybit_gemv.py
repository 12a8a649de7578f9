"""Arbitrary-bit-width weight GEMV (3, 5 or 6 bits): ``y = x @ dequant(W).T`` for one decode token.

Power-of-two widths (2/4/8 bits) are not where the accuracy/size sweet spot always lies; Tilus (2025)
and bipolar-INT kernels support any width by packing codes densely into a bitstream, so a value may
straddle a byte boundary. The kernel must extract codes from arbitrary bit offsets while it streams
the weight once, dequantize in registers and reduce over K. ``bits`` is a module global that the
variants set to 3, 5 and 6.

Storage (buffers):
  ``qweight`` uint8 [N, K * bits // 8]: each row is an LSB-first bitstream: bit ``t`` of the row is
      bit ``t % 8`` of byte ``t // 8``, and the unsigned code of input channel ``k`` occupies bits
      ``k * bits .. k * bits + bits - 1`` (its least significant bit first).
  ``scales``, ``zeros`` float32 [N, K // group_size]: per-group scale and zero point.
Dequantization: ``W[n, k] = (q[n, k] - zeros[n, k // g]) * scales[n, k // g]``.
Requires ``K % group_size == 0`` and ``group_size % 8 == 0`` (rows are whole bytes).
"""

import torch
import torch.nn as nn

CATEGORY = "quantized-matmul"
SOURCE = "Tilus (2025) / bipolar-INT: arbitrary-bit-width (3/5/6-bit) weight-only GEMV"


def pack_bits(q: torch.Tensor, nbits: int) -> torch.Tensor:
    """Pack unsigned codes ``q`` [N, K] (< 2**nbits) into per-row LSB-first bitstreams."""
    n, k = q.shape
    q = q.to(torch.uint8)
    stream = torch.stack([(q >> b) & 1 for b in range(nbits)], dim=-1).view(n, k * nbits // 8, 8)
    packed = stream[..., 0].clone()
    for i in range(1, 8):
        packed |= stream[..., i] << i
    return packed


class Model(nn.Module):
    """Linear layer with densely packed ``nbits``-bit weights; the reference unpacks explicitly."""

    def __init__(self, in_features: int, out_features: int, group_size: int, nbits: int):
        super().__init__()
        assert in_features % group_size == 0 and group_size % 8 == 0
        self.group_size = group_size
        self.nbits = nbits
        q = torch.randint(0, 2**nbits, (out_features, in_features), dtype=torch.int32)
        self.register_buffer("qweight", pack_bits(q, nbits))
        groups = in_features // group_size
        self.register_buffer("scales", torch.rand(out_features, groups) * (0.16 / 2**nbits) + 0.002)
        self.register_buffer("zeros", torch.rand(out_features, groups) * 2 ** (nbits - 1) + 2 ** (nbits - 2))

    def unpack(self) -> torch.Tensor:
        """Return the codes q [N, K] as int64: every 8 codes fill exactly ``nbits`` whole bytes."""
        n = self.qweight.shape[0]
        chunks = self.qweight.view(n, -1, self.nbits).to(torch.int64)  # [N, K/8, nbits]
        word = (chunks << (8 * torch.arange(self.nbits))).sum(-1, keepdim=True)  # LSB-first 8*nbits bits
        codes = (word >> (self.nbits * torch.arange(8))) & (2**self.nbits - 1)  # [N, K/8, 8]
        return codes.view(n, -1)

    def dequantize(self) -> torch.Tensor:
        q = self.unpack()
        n = q.shape[0]
        q = q.view(n, -1, self.group_size).to(self.scales.dtype)
        return ((q - self.zeros[..., None]) * self.scales[..., None]).view(n, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.dequantize().t()


bits = 3
in_features = 4096
out_features = 1024
group_size = 128

# First entry: the headline shape (3-bit weights, batch-1 decode, hidden 4096 -> 1024 outputs,
# the K/V projection of a GQA model).
VARIANTS = [
    {"bits": 3, "in_features": 4096, "out_features": 1024, "group_size": 128},
    {"bits": 5, "in_features": 4096, "out_features": 1024, "group_size": 128},
    {"bits": 6, "in_features": 2048, "out_features": 1536, "group_size": 128},
    {"bits": 5, "in_features": 640, "out_features": 1001, "group_size": 64},  # odd N, 10 groups
    {"bits": 3, "in_features": 96, "out_features": 37, "group_size": 32},  # tiny: tails only
    {"bits": 6, "in_features": 40, "out_features": 3, "group_size": 8},
]


def get_inputs():
    return [torch.randn(1, in_features) * 3.0]


def get_init_inputs():
    return [in_features, out_features, group_size, bits]


def flops(x):
    return 2.0 * x.shape[0] * x.shape[1] * out_features


def bytes_moved(x):
    groups = x.shape[1] // group_size
    weight = bits * out_features * x.shape[1] / 8.0 + 2 * 4.0 * out_features * groups
    return weight + 4.0 * (x.numel() + x.shape[0] * out_features)
