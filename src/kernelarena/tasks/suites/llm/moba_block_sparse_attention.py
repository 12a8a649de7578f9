"""MoBA: mixture-of-block attention for long-context prefill.

Keys are split into blocks of ``block_size`` consecutive positions (block c = position //
block_size). Each query t (queries and keys share positions 0..seq-1, causal) attends to:
  * its own block c(t), causally (keys c(t) * block_size .. t), and
  * the ``top_k - 1`` earlier blocks j < c(t) with the highest gate score
        g[t, j] = q_t . mean(k[j * block_size : (j + 1) * block_size])
    (all earlier blocks if there are at most ``top_k - 1`` of them). Earlier blocks are always
    complete, so every mean is over exactly ``block_size`` keys.
Over the selected keys: out_t = softmax(q_t . k / sqrt(head_dim)) @ v.

q, k, v, out: [batch, heads, seq, head_dim] (float32); ``block_size`` and ``top_k`` are
constructor arguments. The gate is computed in float64 in the reference so that the discrete
top-k choice is a property of the inputs, not of a summation order: with continuous random
inputs the gap between the k-th and (k+1)-th gate score is far above float64 rounding, while in
float32 a few of the ~10^4 selections per call would flip between two implementations. A kernel
must therefore compute the block means and gate scores in float64 as well (cheap: one pass).
Attention cost per query is at most top_k * block_size keys instead of t, which is what makes
MoBA (Kimi's long-context attention) sub-quadratic while staying a drop-in for full attention.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "attention"
SOURCE = "MoBA: Mixture of Block Attention for Long-Context LLMs (Lu et al., 2025)"
# Scale-relative term: softmax turns absolute logit error into relative weight error, and float32
# logit rounding grows with |logit| (inputs x8 -> logits x64; x32 outliers in q and k -> x1024
# products). torch's own float32 result measured up to ~2.6e-4 * rms off float64 (head_dim 128,
# outliers); 1e-3 leaves margin; wrong masks, scales or block choices are off by >= 0.5 * rms.
ATOL = 1e-3
RTOL = 1e-4


class Model(nn.Module):
    """Block-sparse causal attention with per-query top-k block gating."""

    def __init__(self, block_size: int, top_k: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.top_k = top_k

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, h, s, d = q.shape
        bs = self.block_size
        n_blocks = (s + bs - 1) // bs
        n_full = s // bs  # only complete blocks can be earlier blocks of some query
        pos = torch.arange(s, device=q.device)
        cur = pos // bs  # [s] block of each query

        # Gate scores in float64: [b, h, s, n_full]; blocks at or after the query's own are excluded.
        means = k[:, :, : n_full * bs].double().reshape(b, h, n_full, bs, d).mean(dim=3)
        gate = torch.matmul(q.double(), means.transpose(-1, -2))
        earlier = torch.arange(n_full, device=q.device)[None, :] < cur[:, None]  # [s, n_full]
        gate = gate.masked_fill(~earlier, float("-inf"))

        chosen = torch.zeros(b, h, s, n_blocks + 1, dtype=torch.bool, device=q.device)
        n_pick = min(self.top_k - 1, n_full)
        if n_pick > 0:
            val, idx = gate.topk(n_pick, dim=-1)
            idx = torch.where(torch.isfinite(val), idx, n_blocks)  # -inf picks go to a spare column
            chosen.scatter_(-1, idx, True)
        chosen[:, :, pos, cur] = True  # the query's own block
        key_ok = chosen[..., :n_blocks].repeat_interleave(bs, dim=-1)[..., :s]  # [b, h, s, s]
        key_ok = key_ok & (pos[None, :] <= pos[:, None])  # causal

        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)
        scores = scores.masked_fill(~key_ok, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)


batch = 1
heads = 4
seq = 1024
head_dim = 64
block_size = 64
top_k = 3

VARIANTS = [
    {"batch": 1, "heads": 4, "seq": 1024, "head_dim": 64, "block_size": 64, "top_k": 3},
    {"batch": 2, "heads": 3, "seq": 1001, "head_dim": 128, "block_size": 128, "top_k": 4},
    {"batch": 1, "heads": 4, "seq": 333, "head_dim": 80, "block_size": 48, "top_k": 2},  # block not /16
    {"batch": 2, "heads": 2, "seq": 300, "head_dim": 37, "block_size": 20, "top_k": 6},
    {"batch": 1, "heads": 2, "seq": 100, "head_dim": 16, "block_size": 32, "top_k": 8},  # top_k > n_blocks
]


def get_inputs() -> list:
    q = torch.randn(batch, heads, seq, head_dim)
    k = torch.randn(batch, heads, seq, head_dim)
    v = torch.randn(batch, heads, seq, head_dim) * 3.0
    return [q, k, v]


def get_init_inputs() -> list:
    return [block_size, top_k]


def _work(s: int, bs: int, top_k: int) -> tuple[int, int]:
    """(query, key) pairs attended and (query, block) gate scores needed, for one head."""
    pairs = gates = 0
    for t in range(s):
        c = t // bs
        pairs += min(c, top_k - 1) * bs + (t - c * bs + 1)
        gates += c if c > top_k - 1 else 0  # with <= top_k - 1 earlier blocks all are taken
    return pairs, gates


def flops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    # Sizes come from the inputs; block_size and top_k from the module globals (set per variant).
    b, h, s, d = q.shape
    pairs, gates = _work(s, block_size, top_k)
    means = (s // block_size) * block_size * d
    return float(b * h * (pairs * (4 * d + 5) + gates * 2 * d + means))


def bytes_moved(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> float:
    return float((2 * q.numel() + k.numel() + v.numel()) * q.element_size())
