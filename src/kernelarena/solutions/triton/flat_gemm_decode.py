"""Flat GEMM for decode (``y = x @ W^T`` with M = 1..16 tokens): every weight element is read once.

Programs tile N only (plus M when M > 16): program n streams a BLOCK_N x K slab of the weight in
BLOCK_K chunks and multiplies it against all M tokens at once, so the weight, which dominates the
traffic, crosses DRAM exactly once. The dot runs in IEEE fp32 (``input_precision="ieee"``): TF32
would round inputs to 10 mantissa bits, far outside float32 tolerances.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _flat_gemm_kernel(
    x_ptr, w_ptr, y_ptr, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr
):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    n_mask = offs_n < N
    x_rows = x_ptr + offs_m[:, None].to(tl.int64) * K
    w_rows = w_ptr + offs_n[:, None].to(tl.int64) * K
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + offs_k
        k_mask = ks < K
        x = tl.load(x_rows + ks[None, :], mask=m_mask[:, None] & k_mask[None, :], other=0.0)
        w = tl.load(w_rows + ks[None, :], mask=n_mask[:, None] & k_mask[None, :], other=0.0)
        acc = tl.dot(x, tl.trans(w), acc, input_precision="ieee")
    y = y_ptr + offs_m[:, None].to(tl.int64) * N + offs_n[None, :]
    tl.store(y, acc, mask=m_mask[:, None] & n_mask[None, :])


def _config(m: int, n: int, k: int) -> dict:
    # 32-row weight slabs: 344 programs for N = 11008 (2.6 per SM); 72 registers, 48 KiB smem on sm_90
    return {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 128, "num_warps": 4}


def _spec(m: int, n: int, k: int) -> dict:
    cfg = _config(m, n, k)
    return {
        "signature": {
            "x_ptr": "*fp32",
            "w_ptr": "*fp32",
            "y_ptr": "*fp32",
            "M": "i32",
            "N": "i32",
            "K": "i32",
        },
        "constexprs": {"BLOCK_M": cfg["BLOCK_M"], "BLOCK_N": cfg["BLOCK_N"], "BLOCK_K": cfg["BLOCK_K"]},
        "num_warps": cfg["num_warps"],
        "int_values": {"M": m, "N": n, "K": k},
    }


# Headline shape: 8 tokens through a 4096 -> 11008 projection, as launched by forward().
TRITON_COMPILE_SPECS = [(_flat_gemm_kernel, _spec(8, 11008, 4096))]


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        n, k = w.shape
        m = x.numel() // k if k else 0
        y = torch.empty(*x.shape[:-1], n, dtype=x.dtype, device=x.device)
        if m == 0 or n == 0:
            return y
        if k == 0:
            return y.zero_()
        cfg = _config(m, n, k)
        grid = (triton.cdiv(n, cfg["BLOCK_N"]), triton.cdiv(m, cfg["BLOCK_M"]))
        _flat_gemm_kernel[grid](
            x,
            w,
            y,
            m,
            n,
            k,
            BLOCK_M=cfg["BLOCK_M"],
            BLOCK_N=cfg["BLOCK_N"],
            BLOCK_K=cfg["BLOCK_K"],
            num_warps=cfg["num_warps"],
        )
        return y
