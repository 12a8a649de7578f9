"""W6A8 GEMM (FlexQ): packed int6 weights x int8 activations, int32 accumulation, fp32 output.

Six-bit weights keep almost all of W8A8's accuracy at 25% less weight traffic. FlexQ (2025) stores
them densely (4 values in 3 bytes) and unpacks them inside the GEMM kernel, feeding int8 dot-product
units; accumulation is exact in int32 and one float epilogue applies the per-token activation
scale and the per-output-channel weight scale.

Storage:
  ``x`` int8 [M, K]: activations quantized per token; ``x_scale`` float32 [M].
  ``qweight`` (buffer) uint8 [N, 3 * K // 4]: int6 weights in [-32, 31], two's complement in 6
      bits (``u = w & 63``). Each run of 4 consecutive input channels ``k = 4i .. 4i+3`` forms the
      24-bit little-endian word ``u0 | u1 << 6 | u2 << 12 | u3 << 18`` stored in bytes
      ``3i, 3i+1, 3i+2`` of the row (low byte first). Requires ``K % 4 == 0``.
  ``w_scale`` (buffer) float32 [N].
Output: ``y[m, n] = x_scale[m] * w_scale[n] * sum_k x[m, k] * w[n, k]``.
"""

import torch
import torch.nn as nn

CATEGORY = "quantized-matmul"
SOURCE = "FlexQ (2025): W6A8 LLM inference with packed int6 weights on int8 dot-product units"

# The integer sum is exact (also in the fp32 matmul of the codes: |partial sums| < 2**24); only
# the two epilogue multiplies round, so a tight relative tolerance applies.
ATOL = 1e-6
RTOL = 1e-5


def pack_int6(w: torch.Tensor) -> torch.Tensor:
    """Pack int6 values ``w`` [N, K] (in [-32, 31], K % 4 == 0) into the 3-bytes-per-4 layout."""
    n, k = w.shape
    u = (w.to(torch.int32) & 63).view(n, k // 4, 4)
    word = u[..., 0] | (u[..., 1] << 6) | (u[..., 2] << 12) | (u[..., 3] << 18)
    packed = torch.stack([word & 255, (word >> 8) & 255, (word >> 16) & 255], dim=-1)
    return packed.to(torch.uint8).view(n, 3 * k // 4)


class Model(nn.Module):
    """Quantized linear layer with packed int6 weights and a per-output-channel scale."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        assert in_features % 4 == 0
        w = torch.randint(-32, 32, (out_features, in_features), dtype=torch.int32)
        self.register_buffer("qweight", pack_int6(w))
        self.register_buffer("w_scale", torch.rand(out_features) * 0.002 + 0.0005)

    def unpack(self) -> torch.Tensor:
        """Return the int6 weights as int8 [N, K]."""
        n = self.qweight.shape[0]
        b = self.qweight.view(n, -1, 3)
        b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
        u = torch.stack(
            [
                b0 & 63,  # bits 0-5 of the 24-bit word
                (b0 >> 6) | ((b1 & 15) << 2),  # bits 6-11
                (b1 >> 4) | ((b2 & 3) << 4),  # bits 12-17
                b2 >> 2,  # bits 18-23
            ],
            dim=-1,
        ).view(n, -1)
        return (u ^ 32).to(torch.int8) - 32  # sign-extend: two's complement 6 -> 8 bits

    def forward(self, x: torch.Tensor, x_scale: torch.Tensor) -> torch.Tensor:
        dt = x_scale.dtype  # codes are small integers: the float matmul below is exact
        acc = x.to(dt) @ self.unpack().to(dt).t()
        return acc * x_scale[:, None] * self.w_scale.to(dt)[None, :]


tokens = 128
in_features = 4096
out_features = 2048

# First entry: the headline shape (a 128-token prefill chunk, hidden 4096 -> 2048 outputs).
VARIANTS = [
    {"tokens": 128, "in_features": 4096, "out_features": 2048},
    {"tokens": 1, "in_features": 4096, "out_features": 2048},  # decode
    {"tokens": 37, "in_features": 1004, "out_features": 1001},  # odd sizes (K % 8 != 0)
    {"tokens": 100, "in_features": 2048, "out_features": 96},
    {"tokens": 3, "in_features": 12, "out_features": 5},  # tiny: tails only
]


def get_inputs():
    return [
        torch.randint(-128, 128, (tokens, in_features), dtype=torch.int8),
        torch.rand(tokens) * 0.1 + 0.01,
    ]


def get_init_inputs():
    return [in_features, out_features]


def flops(x, x_scale):
    # Floating-point work only (the two epilogue multiplies). The 2*M*N*K integer multiply-adds run
    # on int8 dot-product units (VNNI/AMX) whose peak is far above the fp32 FMA peak that the
    # machine's roofline describes, so counting them as FLOPs would misjudge a fast kernel.
    return 2.0 * x.shape[0] * out_features


def int_ops(x, x_scale):
    # the integer work flops() leaves out: a multiply and an add per int8 x int6 product
    return 2.0 * x.shape[0] * out_features * x.shape[1]


def bytes_moved(x, x_scale):
    weight = 0.75 * out_features * x.shape[1] + 4.0 * out_features
    return weight + x.numel() + 4.0 * x_scale.numel() + 4.0 * x.shape[0] * out_features
