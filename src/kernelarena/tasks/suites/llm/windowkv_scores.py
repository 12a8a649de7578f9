"""WindowKV window importance scores: observation-window attention pooled over token windows.

WindowKV (Zuo et al., 2025) compresses the KV cache of a long prompt by keeping whole windows of
consecutive tokens (to preserve semantic coherence) rather than scattered single tokens. Windows
are ranked by how much attention the last ``obs`` tokens of the prompt (the observation window)
pay to them. For queries ``q_obs`` [batch, heads, obs, head_dim] (the observation window, i.e.
positions ``seq - obs .. seq - 1``) and keys ``keys`` [batch, heads, seq, head_dim]:

    probs  = softmax(q_obs @ keys^T / sqrt(head_dim))  with causal masking inside the window
    token  = probs.sum(over the obs queries)[..., : seq - obs]   (score of every prefix token)
    scores = token summed over consecutive windows of ``window`` tokens (the last one may be short)

Returns ``scores`` [batch, heads, ceil((seq - obs) / window)] (float32). The observation window
itself is always kept, so it is not scored. The op reads the whole key cache once per head and
does a softmax over ``seq`` for each observation query: a skinny GEMM (obs << seq) whose result
is only ever reduced, so a fused kernel never needs to write the [obs, seq] probabilities out.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "kv-cache"
SOURCE = "WindowKV (Zuo et al., 2025): task-adaptive group-wise KV cache window selection; SnapKV observation window"
# Attention logits are float32 dot products over head_dim; softmax turns their absolute rounding
# error (~1e-7 of sum|q_i k_i|) into the same relative error of the probabilities. With x32
# outliers in both q and k a logit can reach ~1e3, and torch's own float32 result was measured up
# to 2.1e-4 relative off float64 (1.1e-4 at x8); RTOL = 1e-3 keeps a ~5x margin. ATOL 1e-5 of
# the rms covers windows with negligible attention.
ATOL = 1e-5
RTOL = 1e-3


class Model(nn.Module):
    """Per-window sum of observation-window attention probabilities."""

    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, q_obs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        obs, seq, d = q_obs.shape[-2], keys.shape[-2], keys.shape[-1]
        logits = q_obs @ keys.transpose(-1, -2) / math.sqrt(d)  # [b, h, obs, seq]
        pos_q = torch.arange(seq - obs, seq).unsqueeze(-1)
        pos_k = torch.arange(seq).unsqueeze(0)
        logits = logits.masked_fill(pos_k > pos_q, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        token = probs.sum(dim=-2)[..., : seq - obs]  # [b, h, seq - obs]
        n_win = math.ceil((seq - obs) / self.window)
        token = F.pad(token, (0, n_win * self.window - (seq - obs)))
        return token.unflatten(-1, (n_win, self.window)).sum(dim=-1)


batch = 1
heads = 32
seq = 4096
obs = 32
head_dim = 128
window = 32

VARIANTS = [
    {"batch": 1, "heads": 32, "seq": 4096, "obs": 32, "head_dim": 128, "window": 32},  # 4k prompt
    {"batch": 2, "heads": 4, "seq": 1001, "obs": 37, "head_dim": 64, "window": 16},  # odd sizes
    {"batch": 1, "heads": 2, "seq": 40, "obs": 8, "head_dim": 80, "window": 7},  # short, partial window
    {"batch": 4, "heads": 8, "seq": 2048, "obs": 1, "head_dim": 128, "window": 64},  # one query
    {"batch": 1, "heads": 2, "seq": 700, "obs": 100, "head_dim": 96, "window": 50},  # obs > 64 queries
]


def get_inputs():
    q_obs = torch.randn(batch, heads, obs, head_dim)
    keys = torch.randn(batch, heads, seq, head_dim)
    return [q_obs, keys]


def get_init_inputs():
    return [window]


def flops(q_obs, keys):
    b, h, s, d = keys.shape
    o = q_obs.shape[-2]
    return float(b * h * o * s * (2 * d + 4))  # q.k, then exp/max/sum/accumulate


def bytes_moved(q_obs, keys):
    b, h, s, _ = keys.shape
    n_win = math.ceil((s - q_obs.shape[-2]) / window)
    return float((keys.numel() + q_obs.numel()) * 4 + b * h * n_win * 4)
