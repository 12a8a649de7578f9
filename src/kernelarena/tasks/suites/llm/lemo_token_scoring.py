"""Token informativeness scoring and top-fraction gathering for long-context fine-tuning.

LeMo (2025) cuts the activation memory of long-context fine-tuning by dropping uninformative tokens:
each token gets a score, and only the top ``keep_ratio`` fraction continue (in their original order)
through the following layers. The score here is how much a layer changed the token,
``||h_out - h_in||_2``: tokens the layer barely touches carry little new information. The kernel is a
row-norm reduction over two [batch, seq, dim] tensors, a per-sequence top-k and a row gather.

Discrete selection, made robust: the difference is rounded to float32 (the inputs' precision) and its
squares are summed in float64, so any summation order gives the same scores to ~1e-13 relative and
no two tokens tie in practice; the reference runs in float32 (``FLOAT64_REFERENCE = False``) because
recomputing the difference in float64 would move scores by ~1e-8 and could reorder near neighbours.
Returns ``(scores [batch, seq] float32, kept [batch, k, dim])`` with ``k = ceil(keep_ratio * seq)``,
the kept tokens being the ``k`` highest-scoring ones of each sequence in ascending position order.
"""

import math

import torch
import torch.nn as nn

CATEGORY = "fine-tuning"
SOURCE = "LeMo: token-sparse long-context fine-tuning (2025)"
FLOAT64_REFERENCE = False


class Model(nn.Module):
    """Score tokens by the L2 norm of a layer's change and keep the top ``keep_ratio`` of each sequence."""

    def __init__(self, keep_ratio: float):
        super().__init__()
        self.keep_ratio = keep_ratio

    def forward(self, h_in: torch.Tensor, h_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        delta = (h_out - h_in).double()  # rounded to float32 first, then exact squares in float64
        scores = delta.square().sum(dim=-1).sqrt()  # [batch, seq] float64
        k = max(1, math.ceil(self.keep_ratio * h_out.shape[1]))
        keep = scores.topk(k, dim=-1).indices.sort(dim=-1).values  # [batch, k], ascending positions
        kept = torch.gather(h_out, 1, keep.unsqueeze(-1).expand(-1, -1, h_out.shape[2]))
        return scores.float(), kept


batch = 1
seq = 4096
dim = 1024
keep_ratio = 0.25

# First entry: the headline shape (one 4096-token sequence of width 1024, keep a quarter).
VARIANTS = [
    {"batch": 1, "seq": 4096, "dim": 1024, "keep_ratio": 0.25},
    {"batch": 1, "seq": 1, "dim": 4096, "keep_ratio": 0.5},  # one token: always kept
    {"batch": 3, "seq": 1001, "dim": 37, "keep_ratio": 0.1},  # odd sizes
    {"batch": 4, "seq": 777, "dim": 513, "keep_ratio": 0.9},
]


def get_inputs():
    h_in = torch.randn(batch, seq, dim) * 3.0
    # A layer's change varies per token: scale it by a per-token factor so scores spread widely.
    gain = torch.exp(torch.randn(batch, seq, 1))
    h_out = h_in + gain * torch.randn(batch, seq, dim)
    return [h_in, h_out]


def get_init_inputs():
    return [keep_ratio]


def flops(h_in, h_out):
    return 3.0 * h_in.numel()


def bytes_moved(h_in, h_out):
    k = max(1, math.ceil(keep_ratio * h_out.shape[1]))
    return 4.0 * (2 * h_in.numel() + h_in.shape[0] * h_in.shape[1] + h_in.shape[0] * k * h_in.shape[2])
