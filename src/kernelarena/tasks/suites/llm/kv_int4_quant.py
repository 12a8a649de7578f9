"""KIVI-style asymmetric int4 quantization of a KV cache: keys per-channel, values per-token.

Inputs ``k``, ``v`` [batch, heads, seq, head_dim] (float32, head_dim even). With group size G:

* keys are quantized per channel: for every (b, h, channel) the tokens are cut into groups of G
  consecutive positions (the last group may be shorter), because key outliers live in fixed
  channels (KIVI's observation);
* values are quantized per token: for every (b, h, token) the channels are cut into groups of G
  (the last group may be shorter), because value errors average out per token in ``P @ V``.

For each group: ``zero = min``, ``scale = (max - min) / 15`` (``1.0`` where ``max == min``) and
``code = clamp(round((x - zero) / scale), 0, 15)`` with round-half-to-even. Codes are packed two
per byte along head_dim: byte ``j`` holds channel ``2j`` in its low nibble and ``2j + 1`` in its
high nibble. Returns

    (k_codes uint8 [b, h, seq, d/2], k_scale f32 [b, h, ceil(seq/G), d], k_zero like k_scale,
     v_codes uint8 [b, h, seq, d/2], v_scale f32 [b, h, seq, ceil(d/G)], v_zero like v_scale)

and dequantization is ``code * scale + zero``. Quantizing the cache 8x (vs fp32) is what lets
long-context decoding fit in memory; the kernel is a bandwidth-bound streaming reduction.

Rounding: codes are integers and must match exactly, so the reference runs in float32
(``FLOAT64_REFERENCE = False``) and the formula above is the contract, op by op: the float32
subtraction ``x - zero``, then a float32 IEEE division by ``scale`` (not a multiplication by a
reciprocal, which rounds differently), then round-half-even. Each of these IEEE operations is
correctly rounded, so any kernel that performs the same sequence gets bit-identical quotients and
hence identical codes, including the exact .5 cases. A kernel that reorders the arithmetic (e.g.
``x * (1/scale)``, FMA contraction, float64) can flip a code whose quotient lies within an ulp of
a half-integer (on the order of one element in 10^6) and is then rejected.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "kv-cache"
SOURCE = "KIVI (Liu et al., 2024): tuning-free asymmetric 2/4-bit KV cache quantization"
FLOAT64_REFERENCE = False  # codes are integers defined by float32 rounding (see docstring)


def _quantize_last_dim(x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Min/max int4 quantization in groups of ``group`` along the last dim (last group may be short)."""
    n = x.shape[-1]
    ng = math.ceil(n / group)
    pad = ng * group - n
    mn = F.pad(x, (0, pad), value=math.inf).unflatten(-1, (ng, group)).amin(dim=-1)
    mx = F.pad(x, (0, pad), value=-math.inf).unflatten(-1, (ng, group)).amax(dim=-1)
    scale = (mx - mn) / 15.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero = mn
    scale_e = scale.repeat_interleave(group, dim=-1)[..., :n]
    zero_e = zero.repeat_interleave(group, dim=-1)[..., :n]
    codes = torch.round((x - zero_e) / scale_e).clamp(0, 15).to(torch.uint8)
    return codes, scale, zero


def _pack_pairs(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte along the last dim: low nibble = even index, high = odd."""
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


class Model(nn.Module):
    """KIVI int4 quantization: per-channel keys (token groups), per-token values (channel groups)."""

    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = group_size

    def forward(self, k: torch.Tensor, v: torch.Tensor):
        kc, ks, kz = _quantize_last_dim(k.transpose(-1, -2), self.group_size)  # groups along seq
        k_codes = _pack_pairs(kc.transpose(-1, -2))
        k_scale, k_zero = ks.transpose(-1, -2).contiguous(), kz.transpose(-1, -2).contiguous()
        vc, v_scale, v_zero = _quantize_last_dim(v, self.group_size)  # groups along head_dim
        v_codes = _pack_pairs(vc)
        return k_codes, k_scale, k_zero, v_codes, v_scale, v_zero


batch = 1
heads = 8
seq = 2048
head_dim = 128
group_size = 32

VARIANTS = [
    {"batch": 1, "heads": 8, "seq": 2048, "head_dim": 128, "group_size": 32},  # prefill of a 2k context
    {"batch": 2, "heads": 4, "seq": 1001, "head_dim": 64, "group_size": 32},  # ragged last token group
    {"batch": 1, "heads": 3, "seq": 37, "head_dim": 80, "group_size": 32},  # ragged channel group too
    {"batch": 4, "heads": 8, "seq": 128, "head_dim": 128, "group_size": 128},  # one group per channel/token
    {"batch": 1, "heads": 2, "seq": 5, "head_dim": 2, "group_size": 64},  # tiny: groups longer than dims
]


def get_inputs():
    k = torch.randn(batch, heads, seq, head_dim)
    # keys have outlier channels (a per-channel scale), which is why KIVI quantizes them per channel
    k = k * (torch.rand(head_dim) * 4.0 + 0.5) + torch.randn(head_dim)
    v = torch.randn(batch, heads, seq, head_dim) * 3.0
    return [k, v]


def get_init_inputs():
    return [group_size]


def flops(k, v):
    return float(6 * (k.numel() + v.numel()))  # min, max, sub, div, round, clamp/pack per element


def bytes_moved(k, v):
    b, h, s, d = k.shape
    g = group_size
    codes = (k.numel() + v.numel()) // 2
    params = 2 * 4 * (b * h * math.ceil(s / g) * d + b * h * s * math.ceil(d / g))
    return float((k.numel() + v.numel()) * 4 + codes + params)
