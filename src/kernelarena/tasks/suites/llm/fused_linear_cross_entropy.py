"""Fused linear + cross-entropy (Cut Cross-Entropy): mean CE of ``hidden @ weight.T`` vs targets.

``hidden [tokens, d]`` are the final hidden states, ``weight [vocab, d]`` the LM-head (classifier)
matrix, ``targets`` int64 ``[tokens]`` with ``ignore_index = -100`` entries excluded from the mean.
The reference materialises the ``[tokens, vocab]`` logits, as eager training code does; for
Llama-3-size vocabularies that tensor is the largest activation of the whole model. Cut
Cross-Entropy never stores it: the GEMM is blocked over the vocabulary, each logit tile is folded
into a running (max, sum) per token (online log-sum-exp) while still in registers, and the target
logit is a single dot product per token. Solutions must not materialise the logits.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "loss"
SOURCE = "Cut Your Losses in Large-Vocabulary Language Models (Wijmans et al., 2024)"


class Model(nn.Module):
    """LM head without bias followed by mean cross-entropy; parameter ``weight [vocab, d]``."""

    def __init__(self, d: int, vocab: int, ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index
        # logits of std ~3 for unit hidden states: a peaked but not degenerate softmax
        self.weight = nn.Parameter(torch.randn(vocab, d) * (3.0 / d**0.5))

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = hidden @ self.weight.t()  # [tokens, vocab], materialised here only
        return F.cross_entropy(logits, targets, ignore_index=self.ignore_index)


tokens = 256
d = 1024
vocab = 16384
num_ignored = 0

VARIANTS = [
    {"tokens": 256, "d": 1024, "vocab": 16384, "num_ignored": 0},  # 8.6 GFLOP, logits would be 16 MiB
    {"tokens": 100, "d": 512, "vocab": 32000, "num_ignored": 30},  # prompt-masked, Llama-2 vocabulary
    {"tokens": 37, "d": 333, "vocab": 1001, "num_ignored": 3},  # odd sizes everywhere
    {"tokens": 1, "d": 256, "vocab": 5003, "num_ignored": 0},
    {"tokens": 70, "d": 1000, "vocab": 13, "num_ignored": 40},  # tiny vocabulary
]


def get_inputs():
    hidden = torch.randn(tokens, d)
    targets = torch.randint(0, vocab, (tokens,), dtype=torch.int64)
    targets[torch.randperm(tokens)[:num_ignored]] = -100
    return [hidden, targets]


def get_init_inputs():
    return [d, vocab, -100]


# The weight is a parameter, not a forward input: its size comes from the module global ``vocab``
# of the current variant.
def flops(hidden, targets):
    tokens, d = hidden.shape
    return 2.0 * tokens * d * vocab + 4.0 * tokens * vocab  # GEMM + online log-sum-exp


def bytes_moved(hidden, targets):
    tokens, d = hidden.shape
    return 4.0 * (tokens * d + vocab * d) + 8.0 * tokens + 4.0  # hidden, weight, targets, loss


# Enforced by the verifier (headline shape): the peak resident memory one call adds must stay under
# a quarter of the logits' size, with room for two copies of the hidden states (a packed copy,
# per-thread tiles). Materializing the [tokens, vocab] logits (16 MiB at the headline) fails.
def memory_budget(hidden, targets):
    tokens, d = hidden.shape
    return 4.0 * tokens * vocab / 4 + 2 * 4.0 * tokens * d
