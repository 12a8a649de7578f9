"""Fused residual add + RMSNorm in one Triton kernel: reads x and residual once, writes y and h once.

One program per row; rows up to 8192 wide stay in registers between the reduction and the scale.
``h`` is stored in the input dtype and the norm is taken of the stored (rounded) value, as the
reference does.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

MAX_BLOCK = 8192


@triton.jit
def _add_rmsnorm_kernel(
    x_ptr, r_ptr, w_ptr, y_ptr, h_ptr, n_cols, eps, BLOCK: tl.constexpr, NUM_CHUNKS: tl.constexpr
):
    row = tl.program_id(0).to(tl.int64)
    base = row * n_cols
    offs = tl.arange(0, BLOCK)
    if NUM_CHUNKS == 1:
        mask = offs < n_cols
        x = tl.load(x_ptr + base + offs, mask=mask, other=0.0)
        r = tl.load(r_ptr + base + offs, mask=mask, other=0.0)
        h = x + r
        tl.store(h_ptr + base + offs, h, mask=mask)
        hf = h.to(tl.float32)
        inv_rms = 1.0 / tl.sqrt(tl.sum(hf * hf, axis=0) / n_cols + eps)
        w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_ptr + base + offs, hf * inv_rms * w, mask=mask)
    else:
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for c in range(NUM_CHUNKS):
            cols = c * BLOCK + offs
            mask = cols < n_cols
            h = tl.load(x_ptr + base + cols, mask=mask, other=0.0) + tl.load(
                r_ptr + base + cols, mask=mask, other=0.0
            )
            tl.store(h_ptr + base + cols, h, mask=mask)
            hf = h.to(tl.float32)
            acc += hf * hf
        inv_rms = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / n_cols + eps)
        for c in range(NUM_CHUNKS):
            cols = c * BLOCK + offs
            mask = cols < n_cols
            # re-read h from x + residual (same rounding as the stored h; avoids a read-after-write on h)
            hf = (
                tl.load(x_ptr + base + cols, mask=mask, other=0.0)
                + tl.load(r_ptr + base + cols, mask=mask, other=0.0)
            ).to(tl.float32)
            w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            tl.store(y_ptr + base + cols, hf * inv_rms * w, mask=mask)


def _config(n_cols: int) -> dict:
    block = min(triton.next_power_of_2(max(n_cols, 1)), MAX_BLOCK)
    return {
        "BLOCK": block,
        "NUM_CHUNKS": triton.cdiv(n_cols, block),
        "num_warps": 4 if block <= 2048 else 8 if block <= 4096 else 16,
    }


def _spec(n_cols: int) -> dict:
    cfg = _config(n_cols)
    ptr = "*fp32"
    return {
        "signature": {
            "x_ptr": ptr,
            "r_ptr": ptr,
            "w_ptr": ptr,
            "y_ptr": ptr,
            "h_ptr": ptr,
            "n_cols": "i32",
            "eps": "fp32",
        },
        "constexprs": {"BLOCK": cfg["BLOCK"], "NUM_CHUNKS": cfg["NUM_CHUNKS"]},
        "num_warps": cfg["num_warps"],
        "int_values": {"n_cols": n_cols},
    }


# Headline shape (dim 4096) and a chunked row (dim 10000), as launched by forward().
TRITON_COMPILE_SPECS = [(_add_rmsnorm_kernel, _spec(4096)), (_add_rmsnorm_kernel, _spec(10000))]


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        residual = residual.contiguous()
        n_cols = x.shape[-1]
        y = torch.empty_like(x)
        h = torch.empty_like(x)
        rows = x.numel() // n_cols if n_cols else 0
        if rows == 0:
            return y, h
        w = self.weight.detach().contiguous()
        cfg = _config(n_cols)
        _add_rmsnorm_kernel[(rows,)](
            x,
            residual,
            w,
            y,
            h,
            n_cols,
            self.eps,
            BLOCK=cfg["BLOCK"],
            NUM_CHUNKS=cfg["NUM_CHUNKS"],
            num_warps=cfg["num_warps"],
        )
        return y, h
