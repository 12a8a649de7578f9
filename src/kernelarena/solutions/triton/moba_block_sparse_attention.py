"""MoBA block-sparse causal attention in three Triton kernels: block means, gating, attention.

1. ``_block_mean_kernel`` (bh, block): the mean key of every complete block, in fp64.
2. ``_gate_topk_kernel`` (bh, 16 queries): gate scores ``q . mean`` for all earlier blocks in fp64
   (the task defines the gate in float64 so the block choice is exact; H100 runs the fp64 dot on
   DMMA), then ``top_k - 1`` rounds of arg-max pick each query's blocks (-1 where a query has fewer
   earlier blocks). Only these indices go to memory: ``[bh, seq, top_k - 1]`` int32.
3. ``_moba_attn_kernel`` (bh, query): online softmax over the query's own block up to the query
   (causal), then over each selected block. Each query touches at most ``top_k * block_size`` keys, so the
   work is what MoBA promises rather than dense causal attention with a mask.
"""

import math

import torch
import torch.nn as nn
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _block_mean_kernel(
    k_ptr, mean_ptr, seq, head_dim, block_size, n_full, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr
):
    bh = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1)
    offs_r = tl.arange(0, BLOCK_R)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < head_dim
    acc = tl.zeros([BLOCK_D], dtype=tl.float64)
    row0 = blk * block_size
    for r0 in range(0, block_size, BLOCK_R):
        rows = r0 + offs_r
        mask = (rows < block_size)[:, None] & d_mask[None, :]
        idx = (bh * seq + row0 + rows)[:, None].to(tl.int64) * head_dim + offs_d[None, :]
        acc += tl.sum(tl.load(k_ptr + idx, mask=mask, other=0.0).to(tl.float64), axis=0)
    tl.store(mean_ptr + (bh * n_full + blk) * head_dim + offs_d, acc / block_size, mask=d_mask)


@triton.jit
def _gate_topk_kernel(
    q_ptr,
    mean_ptr,
    sel_ptr,
    seq,
    head_dim,
    block_size,
    n_full,
    n_pick,
    BLOCK_T: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    bh = tl.program_id(0).to(tl.int64)
    offs_t = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_b = tl.arange(0, BLOCK_B)
    offs_d = tl.arange(0, BLOCK_D)
    t_mask = offs_t < seq
    b_mask = offs_b < n_full
    gate = tl.zeros([BLOCK_T, BLOCK_B], dtype=tl.float64)
    for d0 in range(0, head_dim, BLOCK_D):
        d = d0 + offs_d
        d_mask = d < head_dim
        q = tl.load(
            q_ptr + (bh * seq + offs_t)[:, None] * head_dim + d[None, :],
            mask=t_mask[:, None] & d_mask[None, :],
            other=0.0,
        ).to(tl.float64)
        mean = tl.load(
            mean_ptr + (bh * n_full + offs_b)[:, None] * head_dim + d[None, :],
            mask=b_mask[:, None] & d_mask[None, :],
            other=0.0,
        )
        gate = tl.dot(q, tl.trans(mean), gate)
    cur = offs_t // block_size
    earlier = b_mask[None, :] & (offs_b[None, :] < cur[:, None])
    gate = tl.where(earlier, gate, -float("inf"))
    out = (bh * seq + offs_t) * n_pick
    for r in range(n_pick):
        best = tl.max(gate, axis=1)
        idx = tl.min(tl.where(gate == best[:, None], offs_b[None, :], BLOCK_B), axis=1)
        valid = best > -float("inf")
        tl.store(sel_ptr + out + r, tl.where(valid, idx, -1), mask=t_mask)
        gate = tl.where(offs_b[None, :] == idx[:, None], -float("inf"), gate)


@triton.jit
def _moba_attn_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    sel_ptr,
    o_ptr,
    seq,
    head_dim,
    block_size,
    n_pick,
    sel_cols,
    qk_scale,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    bh = tl.program_id(0).to(tl.int64)
    t = tl.program_id(1)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    d_mask = offs_d < head_dim
    row = (bh * seq + t) * head_dim
    q = tl.load(q_ptr + row + offs_d, mask=d_mask, other=0.0).to(tl.float32) * qk_scale  # base-2 units
    kv_base = bh * seq * head_dim
    sel_row = (bh * seq + t) * sel_cols
    own = (t // block_size) * block_size
    m_i = -float("inf")
    l_i = 0.0
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    # Range 0 is the query's own block up to the query (never empty, so m_i is finite from then
    # on); range r >= 1 is selected block sel[r - 1] (empty when the query had no such block).
    for r in range(n_pick + 1):
        blk = tl.load(sel_ptr + sel_row + tl.maximum(r - 1, 0))
        start = tl.where(r == 0, own, tl.maximum(blk, 0) * block_size)
        end = tl.where(r == 0, t + 1, tl.where(blk >= 0, start + block_size, start))
        for n0 in range(start, end, BLOCK_N):
            rows = n0 + offs_n
            n_mask = rows < end
            idx = kv_base + rows[:, None].to(tl.int64) * head_dim + offs_d[None, :]
            mask = n_mask[:, None] & d_mask[None, :]
            k = tl.load(k_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            s = tl.where(n_mask, tl.sum(k * q[None, :], axis=1), -float("inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=0))
            alpha = tl.exp2(m_i - m_new)
            p = tl.exp2(s - m_new)
            v = tl.load(v_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            acc = acc * alpha + tl.sum(p[:, None] * v, axis=0)
            l_i = l_i * alpha + tl.sum(p, axis=0)
            m_i = m_new
    tl.store(o_ptr + row + offs_d, acc / l_i, mask=d_mask)


def _plan(seq: int, head_dim: int, block_size: int, top_k: int) -> dict:
    n_full = seq // block_size
    block_d = triton.next_power_of_2(max(head_dim, 1))
    return {
        "n_full": n_full,
        "n_pick": max(0, min(top_k - 1, n_full)),
        "BLOCK_D": block_d,
        "BLOCK_R": max(1, min(triton.next_power_of_2(block_size), 4096 // block_d)),
        "BLOCK_B": max(16, triton.next_power_of_2(max(n_full, 1))),
        "BLOCK_T": 16,
        "BLOCK_DG": 16,
        # K/V tiles of <= 4096 floats over 4 warps: 67 (d=64) / 68 (d=128) registers on sm_90, no
        # spills; 64 x 128 tiles at 8 warps spilled 32 bytes.
        "BLOCK_N": max(16, min(triton.next_power_of_2(block_size), 4096 // block_d)),
        "attn_warps": 4,
    }


def _specs(seq: int, head_dim: int, block_size: int, top_k: int) -> list:
    p = _plan(seq, head_dim, block_size, top_k)
    ints = {"seq": seq, "head_dim": head_dim, "block_size": block_size}
    return [
        (
            _block_mean_kernel,
            {
                "signature": {
                    "k_ptr": "*fp32",
                    "mean_ptr": "*fp64",
                    "seq": "i32",
                    "head_dim": "i32",
                    "block_size": "i32",
                    "n_full": "i32",
                },
                "constexprs": {"BLOCK_R": p["BLOCK_R"], "BLOCK_D": p["BLOCK_D"]},
                "int_values": {**ints, "n_full": p["n_full"]},
            },
        ),
        (
            _gate_topk_kernel,
            {
                "signature": {
                    "q_ptr": "*fp32",
                    "mean_ptr": "*fp64",
                    "sel_ptr": "*i32",
                    "seq": "i32",
                    "head_dim": "i32",
                    "block_size": "i32",
                    "n_full": "i32",
                    "n_pick": "i32",
                },
                "constexprs": {"BLOCK_T": p["BLOCK_T"], "BLOCK_B": p["BLOCK_B"], "BLOCK_D": p["BLOCK_DG"]},
                "int_values": {**ints, "n_full": p["n_full"], "n_pick": p["n_pick"]},
            },
        ),
        (
            _moba_attn_kernel,
            {
                "signature": {
                    "q_ptr": "*fp32",
                    "k_ptr": "*fp32",
                    "v_ptr": "*fp32",
                    "sel_ptr": "*i32",
                    "o_ptr": "*fp32",
                    "seq": "i32",
                    "head_dim": "i32",
                    "block_size": "i32",
                    "n_pick": "i32",
                    "sel_cols": "i32",
                    "qk_scale": "fp32",
                },
                "constexprs": {"BLOCK_N": p["BLOCK_N"], "BLOCK_D": p["BLOCK_D"]},
                "num_warps": p["attn_warps"],
                "int_values": {**ints, "n_pick": p["n_pick"], "sel_cols": max(p["n_pick"], 1)},
            },
        ),
    ]


# Headline shape (seq 1024, head_dim 64, block 64, top-3) and the head_dim-128 variant.
TRITON_COMPILE_SPECS = _specs(1024, 64, 64, 3) + _specs(1001, 128, 128, 4)


class ModelNew(nn.Module):
    def __init__(self, block_size: int, top_k: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.top_k = top_k

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = q.contiguous()
        k = k.contiguous()
        v = v.contiguous()
        b, h, seq, head_dim = q.shape
        bh = b * h
        out = torch.empty_like(q)
        if bh == 0 or seq == 0:
            return out
        p = _plan(seq, head_dim, self.block_size, self.top_k)
        n_full, n_pick = p["n_full"], p["n_pick"]
        # at least one column: the attention kernel reads column 0 (and ignores it) when n_pick == 0
        sel = torch.empty(bh, seq, max(n_pick, 1), dtype=torch.int32, device=q.device)
        if n_pick > 0:
            means = torch.empty(bh, n_full, head_dim, dtype=torch.float64, device=q.device)
            _block_mean_kernel[(bh, n_full)](
                k, means, seq, head_dim, self.block_size, n_full, BLOCK_R=p["BLOCK_R"], BLOCK_D=p["BLOCK_D"]
            )
            _gate_topk_kernel[(bh, triton.cdiv(seq, p["BLOCK_T"]))](
                q,
                means,
                sel,
                seq,
                head_dim,
                self.block_size,
                n_full,
                n_pick,
                BLOCK_T=p["BLOCK_T"],
                BLOCK_B=p["BLOCK_B"],
                BLOCK_D=p["BLOCK_DG"],
            )
        _moba_attn_kernel[(bh, seq)](
            q,
            k,
            v,
            sel,
            out,
            seq,
            head_dim,
            self.block_size,
            n_pick,
            sel.shape[-1],
            LOG2E / math.sqrt(head_dim),
            BLOCK_N=p["BLOCK_N"],
            BLOCK_D=p["BLOCK_D"],
            num_warps=p["attn_warps"],
        )
        return out
