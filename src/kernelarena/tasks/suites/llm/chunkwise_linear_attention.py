"""Gated linear attention / mLSTM with sigmoid gates, computed chunkwise (Tiled Flash Linear Attention).

The mLSTM of xLSTM (and gated linear attention in general) replaces softmax attention by a
matrix-valued recurrent state. With the sigmoid input gate of TFLA's mLSTMsig, per head:

    f_t = sigmoid(f_pre_t),  i_t = sigmoid(i_pre_t)             (scalar gates in (0, 1))
    C_t = f_t * C_{t-1} + i_t * k_t v_t^T,  C_0 = 0             (C_t: [dk, dv])
    h_t = C_t^T q_t / sqrt(dk)

i.e. h_t = sum_{s <= t} (prod_{r=s+1..t} f_r) * i_s * (q_t . k_s / sqrt(dk)) * v_s.
q, k: [batch, heads, seq, dk]; v: [batch, heads, seq, dv]; f_pre, i_pre: [batch, heads, seq]
(float32, gate pre-activations); out h: [batch, heads, seq, dv]. Because both gates lie in (0, 1)
every decay factor exp(sum log f) is in (0, 1]: no exponent can overflow, and no max-state
stabilizer is needed.

The reference evaluates the quadratic "parallel" form (a causal, decay-weighted seq x seq
matrix). Recurrent evaluation is O(seq) but sequential; the chunkwise form used by TFLA (and
flash-linear-attention) splits the sequence into chunks, carries C only across chunk boundaries,
and does the within-chunk part as small dense matmuls: O(seq * chunk * d + seq * dk * dv) work.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "attention"
SOURCE = "Tiled Flash Linear Attention (Beck et al., 2025); xLSTM mLSTM (Beck et al., 2024)"
# Outputs are sums of up to seq signed terms (no softmax normalization), and the float32 cumsum of
# the log forget gates carries ~1e-7 * |cumsum| absolute error into every decay exponent: torch's
# own float32 result is up to ~4e-5 * rms off the float64 one at seq 2500, so ATOL is 2e-4.
ATOL = 2e-4
RTOL = 1e-4


class Model(nn.Module):
    """mLSTM (sigmoid gates) in its quadratic parallel form."""

    def __init__(self) -> None:
        super().__init__()

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f_pre: torch.Tensor, i_pre: torch.Tensor
    ) -> torch.Tensor:
        s, dk = q.shape[-2], q.shape[-1]
        cum = torch.cumsum(F.logsigmoid(f_pre), dim=-1)  # [b, h, s]: sum_{r <= t} log f_r
        log_decay = cum.unsqueeze(-1) - cum.unsqueeze(-2)  # [b, h, t, s]: sum_{r=s+1..t} log f_r
        causal = torch.ones(s, s, dtype=torch.bool, device=q.device).tril()
        log_decay = log_decay.masked_fill(~causal, float("-inf"))
        weights = torch.exp(log_decay) * torch.sigmoid(i_pre).unsqueeze(-2)  # [b, h, t, s]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dk)
        return torch.matmul(scores * weights, v)


batch = 1
heads = 4
seq = 1024
dk = 128
dv = 128

VARIANTS = [
    {"batch": 1, "heads": 4, "seq": 1024, "dk": 128, "dv": 128},
    {"batch": 2, "heads": 3, "seq": 1001, "dk": 64, "dv": 96},
    {"batch": 1, "heads": 1, "seq": 2500, "dk": 64, "dv": 64},  # one head: parallelism must come from chunks
    {"batch": 3, "heads": 2, "seq": 37, "dk": 37, "dv": 20},
    {"batch": 1, "heads": 2, "seq": 1, "dk": 16, "dv": 16},
]


def get_inputs() -> list:
    q = torch.randn(batch, heads, seq, dk)
    k = torch.randn(batch, heads, seq, dk)
    v = torch.randn(batch, heads, seq, dv) * 3.0
    f_pre = torch.randn(batch, heads, seq) * 2.0 + 4.0  # forget gates mostly 0.9..0.999 (xLSTM-style bias)
    i_pre = torch.randn(batch, heads, seq) * 3.0
    return [q, k, v, f_pre, i_pre]


def get_init_inputs() -> list:
    return []


def flops(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f_pre: torch.Tensor, i_pre: torch.Tensor
) -> float:
    # Minimum useful work is the recurrent form: per step a rank-1 state update and a readout.
    b, h, s, d_k = q.shape
    d_v = v.shape[-1]
    return float(b * h * s * (4 * d_k * d_v + 2 * d_k + 10))


def bytes_moved(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f_pre: torch.Tensor, i_pre: torch.Tensor
) -> float:
    return float((q.numel() + k.numel() + 2 * v.numel() + f_pre.numel() + i_pre.numel()) * 4)
