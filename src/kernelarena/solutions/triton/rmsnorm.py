"""RMSNorm in one Triton kernel: one program per row, fp32 accumulation.

A row that fits one block (dim <= 8192) is loaded once, reduced and scaled from registers; a longer
row is reduced in chunks and re-read for the scale pass (the second read hits L2).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl

MAX_BLOCK = 8192


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, y_ptr, n_cols, eps, BLOCK: tl.constexpr, NUM_CHUNKS: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * n_cols
    y_row = y_ptr + row * n_cols
    offs = tl.arange(0, BLOCK)
    if NUM_CHUNKS == 1:
        mask = offs < n_cols
        x = tl.load(x_row + offs, mask=mask, other=0.0).to(tl.float32)
        inv_rms = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
        w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_row + offs, x * inv_rms * w, mask=mask)
    else:
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for c in range(NUM_CHUNKS):
            cols = c * BLOCK + offs
            x = tl.load(x_row + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
            acc += x * x
        inv_rms = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / n_cols + eps)
        for c in range(NUM_CHUNKS):
            cols = c * BLOCK + offs
            mask = cols < n_cols
            x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
            w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            tl.store(y_row + cols, x * inv_rms * w, mask=mask)


def _config(n_cols: int) -> dict:
    block = min(triton.next_power_of_2(max(n_cols, 1)), MAX_BLOCK)
    return {
        "BLOCK": block,
        "NUM_CHUNKS": triton.cdiv(n_cols, block),
        "num_warps": 4 if block <= 2048 else 8 if block <= 4096 else 16,
    }


def _spec(n_cols: int) -> dict:
    cfg = _config(n_cols)
    return {
        "signature": {"x_ptr": "*fp32", "w_ptr": "*fp32", "y_ptr": "*fp32", "n_cols": "i32", "eps": "fp32"},
        "constexprs": {"BLOCK": cfg["BLOCK"], "NUM_CHUNKS": cfg["NUM_CHUNKS"]},
        "num_warps": cfg["num_warps"],
        "int_values": {"n_cols": n_cols},
    }


# Headline shape (dim 2048) and a chunked row (dim 10000), as launched by forward().
TRITON_COMPILE_SPECS = [(_rmsnorm_kernel, _spec(2048)), (_rmsnorm_kernel, _spec(10000))]


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        n_cols = x.shape[-1]
        y = torch.empty_like(x)
        rows = x.numel() // n_cols if n_cols else 0
        if rows == 0:
            return y
        w = self.weight.detach().contiguous()
        cfg = _config(n_cols)
        _rmsnorm_kernel[(rows,)](
            x,
            w,
            y,
            n_cols,
            self.eps,
            BLOCK=cfg["BLOCK"],
            NUM_CHUNKS=cfg["NUM_CHUNKS"],
            num_warps=cfg["num_warps"],
        )
        return y
