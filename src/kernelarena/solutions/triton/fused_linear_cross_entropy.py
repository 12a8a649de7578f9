"""Fused linear + cross-entropy (Cut Cross-Entropy style) in two Triton kernels; logits never stored.

1. ``_lse_partial_kernel`` (token block, vocab split): for BLOCK_T tokens and one slice of the
   vocabulary, computes logit tiles ``hidden @ weight^T`` in registers (BLOCK_V columns at a time,
   K-loop over d) and folds each tile into a running max and sum per token (online log-sum-exp); the
   target logit is picked out of the tile that holds it. Writes (max, sum, target logit) per token
   and split: ``3 * tokens * splits`` floats instead of ``tokens * vocab`` logits.
2. ``_ce_merge_kernel`` (one program): merges the splits per token into ``lse - target_logit`` and
   takes the mean over tokens whose target is not ``ignore_index`` (sum and count in fp64; 0/0 = NaN
   when every token is ignored, as F.cross_entropy gives).

Token blocks are the fastest grid axis, so the programs that share a weight slice run together
and the slice comes from DRAM once. The GEMM uses ``input_precision="tf32x3"``: tensor cores with a
split-operand correction, ~1e-6 relative error per product, where plain TF32 (~1e-3) would fail
float32 tolerances and IEEE fp32 would run on the FMA pipes at a fraction of the speed.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _lse_partial_kernel(
    h_ptr,
    w_ptr,
    tgt_ptr,
    m_ptr,
    s_ptr,
    t_ptr,
    T,
    V,
    D,
    split_len,
    n_splits,
    BLOCK_T: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_t = tl.program_id(0)
    split = tl.program_id(1)
    offs_t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    offs_k = tl.arange(0, BLOCK_K)
    t_mask = offs_t < T
    tgt = tl.load(tgt_ptr + offs_t, mask=t_mask, other=-1)
    h_rows = h_ptr + offs_t[:, None].to(tl.int64) * D
    v_start = split * split_len
    v_end = tl.minimum(v_start + split_len, V)
    m_i = tl.full([BLOCK_T], -float("inf"), dtype=tl.float32)
    s_i = tl.zeros([BLOCK_T], dtype=tl.float32)
    t_i = tl.zeros([BLOCK_T], dtype=tl.float32)
    for v0 in range(v_start, v_end, BLOCK_V):
        offs_v = v0 + tl.arange(0, BLOCK_V)
        v_mask = offs_v < v_end
        w_rows = w_ptr + offs_v[:, None].to(tl.int64) * D
        acc = tl.zeros([BLOCK_T, BLOCK_V], dtype=tl.float32)
        for k0 in range(0, D, BLOCK_K):
            ks = k0 + offs_k
            k_mask = ks < D
            h = tl.load(h_rows + ks[None, :], mask=t_mask[:, None] & k_mask[None, :], other=0.0)
            w = tl.load(w_rows + ks[None, :], mask=v_mask[:, None] & k_mask[None, :], other=0.0)
            acc = tl.dot(h, tl.trans(w), acc, input_precision="tf32x3")
        logits = tl.where(v_mask[None, :], acc, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(logits, axis=1))
        s_i = s_i * tl.exp(m_i - m_new) + tl.sum(tl.exp(logits - m_new[:, None]), axis=1)
        m_i = m_new
        t_i += tl.sum(tl.where(offs_v[None, :] == tgt[:, None], acc, 0.0), axis=1)
    part = offs_t.to(tl.int64) * n_splits + split
    tl.store(m_ptr + part, m_i, mask=t_mask)
    tl.store(s_ptr + part, s_i, mask=t_mask)
    tl.store(t_ptr + part, t_i, mask=t_mask)


@triton.jit
def _ce_merge_kernel(
    m_ptr,
    s_ptr,
    t_ptr,
    tgt_ptr,
    out_ptr,
    T,
    n_splits,
    ignore_index,
    BLOCK_T: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    offs_s = tl.arange(0, BLOCK_S)
    s_mask = offs_s < n_splits
    total = tl.zeros([BLOCK_T], dtype=tl.float64)
    count = tl.zeros([BLOCK_T], dtype=tl.float64)
    for t0 in range(0, T, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        t_mask = offs_t < T
        idx = offs_t[:, None].to(tl.int64) * n_splits + offs_s[None, :]
        mask = t_mask[:, None] & s_mask[None, :]
        m = tl.load(m_ptr + idx, mask=mask, other=-float("inf"))
        s = tl.load(s_ptr + idx, mask=mask, other=0.0)
        tgt_logit = tl.sum(tl.load(t_ptr + idx, mask=mask, other=0.0), axis=1)
        m_max = tl.max(m, axis=1)
        m_max = tl.where(t_mask, m_max, 0.0)
        lse = m_max + tl.log(tl.sum(s * tl.exp(m - m_max[:, None]), axis=1))
        tgt = tl.load(tgt_ptr + offs_t, mask=t_mask, other=ignore_index)
        valid = t_mask & (tgt != ignore_index)
        total += tl.where(valid, (lse - tgt_logit).to(tl.float64), 0.0)
        count += valid.to(tl.float64)
    loss = tl.sum(total, axis=0) / tl.sum(count, axis=0)
    tl.store(out_ptr, loss.to(out_ptr.dtype.element_ty))


TARGET_PROGRAMS = 264  # (token block, vocab split) programs: ~2 per SM of a 132-SM H100


def _plan(tokens: int, vocab: int, d: int) -> dict:
    block_t = 64 if tokens > 32 else 32 if tokens > 16 else 16
    block_v = 64
    t_blocks = triton.cdiv(tokens, block_t)
    want_splits = max(1, min(triton.cdiv(TARGET_PROGRAMS, t_blocks), triton.cdiv(vocab, block_v)))
    split_len = triton.cdiv(triton.cdiv(vocab, want_splits), block_v) * block_v
    n_splits = triton.cdiv(vocab, split_len)
    return {
        "BLOCK_T": block_t,
        "BLOCK_V": block_v,
        "BLOCK_K": 32,
        "num_warps": 4,
        "split_len": split_len,
        "n_splits": n_splits,
        "BLOCK_S": max(2, triton.next_power_of_2(n_splits)),
    }


def _specs(tokens: int, d: int, vocab: int) -> list:
    p = _plan(tokens, vocab, d)
    return [
        (
            _lse_partial_kernel,
            {
                "signature": {
                    "h_ptr": "*fp32",
                    "w_ptr": "*fp32",
                    "tgt_ptr": "*i64",
                    "m_ptr": "*fp32",
                    "s_ptr": "*fp32",
                    "t_ptr": "*fp32",
                    "T": "i32",
                    "V": "i32",
                    "D": "i32",
                    "split_len": "i32",
                    "n_splits": "i32",
                },
                "constexprs": {"BLOCK_T": p["BLOCK_T"], "BLOCK_V": p["BLOCK_V"], "BLOCK_K": p["BLOCK_K"]},
                "num_warps": p["num_warps"],
                "int_values": {
                    "T": tokens,
                    "V": vocab,
                    "D": d,
                    "split_len": p["split_len"],
                    "n_splits": p["n_splits"],
                },
            },
        ),
        (
            _ce_merge_kernel,
            {
                "signature": {
                    "m_ptr": "*fp32",
                    "s_ptr": "*fp32",
                    "t_ptr": "*fp32",
                    "tgt_ptr": "*i64",
                    "out_ptr": "*fp32",
                    "T": "i32",
                    "n_splits": "i32",
                    "ignore_index": "i32",
                },
                "constexprs": {"BLOCK_T": 64, "BLOCK_S": p["BLOCK_S"]},
                "int_values": {"T": tokens, "n_splits": p["n_splits"]},
            },
        ),
    ]


# Headline shape: 256 tokens, d 1024, vocabulary 16384, as launched by forward().
TRITON_COMPILE_SPECS = _specs(256, 1024, 16384)


class ModelNew(nn.Module):
    def __init__(self, d: int, vocab: int, ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index
        self.weight = nn.Parameter(torch.empty(vocab, d))

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        hidden = hidden.contiguous()
        targets = targets.contiguous()
        w = self.weight.detach().contiguous()
        vocab, d = w.shape
        tokens = targets.numel()
        loss = torch.empty((), dtype=hidden.dtype, device=hidden.device)
        p = _plan(max(tokens, 1), vocab, d)
        n_splits = p["n_splits"]
        m = torch.empty(max(tokens, 1), n_splits, dtype=torch.float32, device=hidden.device)
        s = torch.empty_like(m)
        t = torch.empty_like(m)
        if tokens > 0:
            grid = (triton.cdiv(tokens, p["BLOCK_T"]), n_splits)
            _lse_partial_kernel[grid](
                hidden,
                w,
                targets,
                m,
                s,
                t,
                tokens,
                vocab,
                d,
                p["split_len"],
                n_splits,
                BLOCK_T=p["BLOCK_T"],
                BLOCK_V=p["BLOCK_V"],
                BLOCK_K=p["BLOCK_K"],
                num_warps=p["num_warps"],
            )
        _ce_merge_kernel[(1,)](
            m, s, t, targets, loss, tokens, n_splits, self.ignore_index, BLOCK_T=64, BLOCK_S=p["BLOCK_S"]
        )
        return loss
