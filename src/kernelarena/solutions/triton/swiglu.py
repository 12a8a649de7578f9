"""SwiGLU (``silu(gate) * up``) as one elementwise Triton kernel over a 2-D grid (row, column block).

Each program reads BLOCK gate and BLOCK up values of one row and writes BLOCK outputs; the sigmoid
is computed in fp32 as ``1 / (1 + exp(-g))``, which saturates cleanly for large |g|.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _swiglu_kernel(x_ptr, y_ptr, hidden, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < hidden
    x_row = x_ptr + row * (2 * hidden)
    g = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(x_row + hidden + cols, mask=mask, other=0.0).to(tl.float32)
    y = g / (1.0 + tl.exp(-g)) * u
    tl.store(y_ptr + row * hidden + cols, y, mask=mask)


def _config(hidden: int) -> dict:
    block = min(triton.next_power_of_2(max(hidden, 1)), 2048)
    return {"BLOCK": block, "num_warps": 4 if block <= 1024 else 8}


# Headline shape: hidden 11008 (Llama-7B intermediate size), as launched by forward().
TRITON_COMPILE_SPECS = [
    (
        _swiglu_kernel,
        {
            "signature": {"x_ptr": "*fp32", "y_ptr": "*fp32", "hidden": "i32"},
            "constexprs": {"BLOCK": _config(11008)["BLOCK"]},
            "num_warps": _config(11008)["num_warps"],
            "int_values": {"hidden": 11008},
        },
    )
]


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        hidden = x.shape[-1] // 2
        y = torch.empty(*x.shape[:-1], hidden, dtype=x.dtype, device=x.device)
        rows = y.numel() // hidden if hidden else 0
        if rows == 0:
            return y
        cfg = _config(hidden)
        grid = (rows, triton.cdiv(hidden, cfg["BLOCK"]))
        _swiglu_kernel[grid](x, y, hidden, BLOCK=cfg["BLOCK"], num_warps=cfg["num_warps"])
        return y
