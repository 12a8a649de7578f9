"""W4A4 GEMM with int8 outlier channels (COMET): int4 x int4 plus an int8 path, fp32 epilogue.

W4A4 halves the traffic and doubles the integer throughput of W8A8, but a few activation channels
carry outliers that 4 bits cannot represent. COMET (2024/2025) keeps those channels in int8 and runs
them through a separate int8 x int4 path; both paths accumulate exactly in int32 and meet in a float
epilogue with the per-token activation scales and the per-channel weight scale. The inputs here are
already quantized (the quantizer's output), so the op is pure integer arithmetic plus one epilogue.

Storage:
  ``x4`` int8 [M, K]: int4 activations, values in [-8, 7] (one per int8); the quantizer left the
      outlier channels at 0, but the op below does not rely on that.
  ``x4_scale`` float32 [M]: per-token scale of the int4 part.
  ``x8`` int8 [M, n_outliers]: the outlier channels ``outlier_idx`` in int8, values in [-128, 127].
  ``x8_scale`` float32 [M]: per-token scale of the int8 part.
  ``outlier_idx`` int64 [n_outliers]: distinct input channels, ascending.
  ``w4`` (buffer) int8 [N, K]: int4 weights in [-8, 7]; ``w_scale`` (buffer) float32 [N].
Output: ``y[m, n] = w_scale[n] * (x4_scale[m] * sum_k x4[m, k] w4[n, k]
                                  + x8_scale[m] * sum_o x8[m, o] w4[n, outlier_idx[o]])``.
"""

import torch
import torch.nn as nn

CATEGORY = "quantized-matmul"
# the outlier channel ids are sorted and distinct: every other input may be perturbed or nudged
PERTURB_INPUTS = [0, 1, 2, 3]
SOURCE = "COMET (2024/2025): W4A4KV4 serving with fine-grained mixed-precision (int8 outlier) GEMM"

# Both integer sums are exact (|partial sums| < 2**24, so even fp32 matmul of the codes is exact);
# only the epilogue rounds, a few ulps, so a tight relative tolerance applies.
ATOL = 1e-6
RTOL = 1e-5


class Model(nn.Module):
    """Quantized linear layer: int4 weights with a per-output-channel scale."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.register_buffer("w4", torch.randint(-8, 8, (out_features, in_features), dtype=torch.int8))
        self.register_buffer("w_scale", torch.rand(out_features) * 0.02 + 0.005)

    def forward(
        self,
        x4: torch.Tensor,
        x4_scale: torch.Tensor,
        x8: torch.Tensor,
        x8_scale: torch.Tensor,
        outlier_idx: torch.Tensor,
    ) -> torch.Tensor:
        dt = x4_scale.dtype  # codes are small integers: the float matmuls below are exact
        acc4 = x4.to(dt) @ self.w4.to(dt).t()
        acc8 = x8.to(dt) @ self.w4[:, outlier_idx].to(dt).t()
        w_scale = self.w_scale.to(dt)
        return (acc4 * x4_scale[:, None] + acc8 * x8_scale[:, None]) * w_scale[None, :]


tokens = 256
in_features = 4096
out_features = 2048
n_outliers = 128

# First entry: the headline shape (a 256-token prefill chunk, hidden 4096 -> 2048, 128 outliers).
VARIANTS = [
    {"tokens": 256, "in_features": 4096, "out_features": 2048, "n_outliers": 128},
    {"tokens": 1, "in_features": 4096, "out_features": 4096, "n_outliers": 64},  # decode
    {"tokens": 37, "in_features": 1000, "out_features": 1001, "n_outliers": 37},  # odd sizes
    {"tokens": 64, "in_features": 2048, "out_features": 512, "n_outliers": 1},  # a single outlier
    {"tokens": 5, "in_features": 24, "out_features": 3, "n_outliers": 7},  # tiny: tails only
]


def get_inputs():
    idx = torch.randperm(in_features)[:n_outliers].sort().values
    x4 = torch.randint(-8, 8, (tokens, in_features), dtype=torch.int8)
    x4[:, idx] = 0
    x8 = torch.randint(-128, 128, (tokens, n_outliers), dtype=torch.int8)
    x4_scale = torch.rand(tokens) * 0.5 + 0.1
    x8_scale = torch.rand(tokens) * 0.05 + 0.01
    return [x4, x4_scale, x8, x8_scale, idx]


def get_init_inputs():
    return [in_features, out_features]


def flops(x4, x4_scale, x8, x8_scale, outlier_idx):
    # Floating-point work only (the epilogue: 2 scales, 1 add, 1 weight scale). The
    # 2*M*N*(K + n_outliers) integer multiply-adds run on int8 dot-product units (VNNI/AMX) whose
    # peak is far above the fp32 FMA peak that the machine's roofline describes.
    return 4.0 * x4.shape[0] * out_features


def int_ops(x4, x4_scale, x8, x8_scale, outlier_idx):
    # the integer work flops() leaves out: a multiply and an add per int4 and per outlier product
    return 2.0 * x4.shape[0] * out_features * (x4.shape[1] + outlier_idx.numel())


def bytes_moved(x4, x4_scale, x8, x8_scale, outlier_idx):
    weight = out_features * x4.shape[1] * 0.5 + 4.0 * out_features  # int4 codes at 4 bits + scales
    acts = x4.numel() * 0.5 + x8.numel() + 4.0 * (x4_scale.numel() + x8_scale.numel())
    return weight + acts + 8.0 * outlier_idx.numel() + 4.0 * x4.shape[0] * out_features
