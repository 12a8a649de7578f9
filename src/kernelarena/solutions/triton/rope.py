"""RoPE (NeoX half rotation) for q and k in one Triton kernel: one program per token.

The angles need double precision (position up to ~32k times a frequency near 1), so each program
computes ``inv_freq = exp(-(2i/d) * ln(base))``, the angle and its cos/sin in fp64 once per token
(libdevice's fp64 cos/sin reduce large arguments exactly), converts them to fp32 and applies them
to every q and k head of that token, BLOCK_H heads at a time. ``base`` travels as a one-element
fp64 tensor because Triton passes Python floats as fp32.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _rotate_heads(x_ptr, o_ptr, base, n_heads, half, cos, sin, offs_i, i_mask, BLOCK_H: tl.constexpr):
    head_dim = 2 * half
    for h0 in range(0, n_heads, BLOCK_H):
        offs_h = h0 + tl.arange(0, BLOCK_H)
        mask = (offs_h < n_heads)[:, None] & i_mask[None, :]
        idx = base + offs_h[:, None] * head_dim + offs_i[None, :]
        x1 = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(x_ptr + idx + half, mask=mask, other=0.0).to(tl.float32)
        tl.store(o_ptr + idx, x1 * cos[None, :] - x2 * sin[None, :], mask=mask)
        tl.store(o_ptr + idx + half, x2 * cos[None, :] + x1 * sin[None, :], mask=mask)


@triton.jit
def _rope_kernel(
    q_ptr,
    k_ptr,
    pos_ptr,
    base_ptr,
    qo_ptr,
    ko_ptr,
    q_heads,
    kv_heads,
    half,
    BLOCK_HALF: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    tok = tl.program_id(0).to(tl.int64)
    offs_i = tl.arange(0, BLOCK_HALF)
    i_mask = offs_i < half
    pos = tl.load(pos_ptr + tok).to(tl.float64)
    log_base = tl.log(tl.load(base_ptr))
    exponent = (2 * offs_i).to(tl.float64) / (2 * half).to(tl.float64)
    angle = pos * tl.exp(-exponent * log_base)
    cos = tl.cos(angle).to(tl.float32)
    sin = tl.sin(angle).to(tl.float32)
    head_dim = 2 * half
    _rotate_heads(q_ptr, qo_ptr, tok * q_heads * head_dim, q_heads, half, cos, sin, offs_i, i_mask, BLOCK_H)
    _rotate_heads(k_ptr, ko_ptr, tok * kv_heads * head_dim, kv_heads, half, cos, sin, offs_i, i_mask, BLOCK_H)


def _config(head_dim: int) -> dict:
    block_half = triton.next_power_of_2(max(head_dim // 2, 1))
    return {"BLOCK_HALF": block_half, "BLOCK_H": max(1, min(8, 2048 // block_half)), "num_warps": 4}


def _spec(q_heads: int, kv_heads: int, head_dim: int) -> dict:
    cfg = _config(head_dim)
    return {
        "signature": {
            "q_ptr": "*fp32",
            "k_ptr": "*fp32",
            "pos_ptr": "*i64",
            "base_ptr": "*fp64",
            "qo_ptr": "*fp32",
            "ko_ptr": "*fp32",
            "q_heads": "i32",
            "kv_heads": "i32",
            "half": "i32",
        },
        "constexprs": {"BLOCK_HALF": cfg["BLOCK_HALF"], "BLOCK_H": cfg["BLOCK_H"]},
        "num_warps": cfg["num_warps"],
        "int_values": {"q_heads": q_heads, "kv_heads": kv_heads, "half": head_dim // 2},
    }


# Headline shape: 32 query heads, 8 key heads, head_dim 128 (Llama-3-8B), as launched by forward().
TRITON_COMPILE_SPECS = [(_rope_kernel, _spec(32, 8, 128))]


class ModelNew(nn.Module):
    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = q.contiguous()
        k = k.contiguous()
        positions = positions.contiguous()
        q_out = torch.empty_like(q)
        k_out = torch.empty_like(k)
        tokens = positions.numel()
        if tokens == 0 or self.head_dim < 2:
            return q_out, k_out
        half = self.head_dim // 2
        base = torch.full((1,), float(self.base), dtype=torch.float64, device=q.device)
        cfg = _config(self.head_dim)
        _rope_kernel[(tokens,)](
            q,
            k,
            positions,
            base,
            q_out,
            k_out,
            q.shape[-2],
            k.shape[-2],
            half,
            BLOCK_HALF=cfg["BLOCK_HALF"],
            BLOCK_H=cfg["BLOCK_H"],
            num_warps=cfg["num_warps"],
        )
        return q_out, k_out
