"""Mean token-level cross-entropy of LM logits against int64 targets, with ``ignore_index``.

``loss = mean over t with targets[t] != ignore_index of (logsumexp(logits[t]) - logits[t, targets[t]])``
(``F.cross_entropy`` semantics: ignored tokens, e.g. padding or prompt tokens masked with -100, count
neither in the sum nor in the denominator). The training objective of every LLM; with a large
vocabulary the logits dominate activation memory, and eager PyTorch makes several passes over them
(log-softmax, gather, mean). A fused kernel needs one pass per row.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "loss"
SOURCE = "Liger Kernel fused cross-entropy (Hsu et al., 2024); PyTorch F.cross_entropy"


class Model(nn.Module):
    """``F.cross_entropy(logits, targets, ignore_index=ignore_index)`` (mean reduction) -> scalar."""

    def __init__(self, ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, ignore_index=self.ignore_index)


tokens = 512
vocab = 32000
num_ignored = 0  # how many targets are set to ignore_index (always fewer than tokens)

VARIANTS = [
    {"tokens": 512, "vocab": 32000, "num_ignored": 0},  # Llama-2 vocabulary
    {"tokens": 300, "vocab": 32000, "num_ignored": 111},  # padded / prompt-masked batch
    {"tokens": 37, "vocab": 1001, "num_ignored": 5},  # odd sizes
    {"tokens": 1, "vocab": 128256, "num_ignored": 0},  # single token, Llama-3 vocabulary
    {"tokens": 64, "vocab": 50257, "num_ignored": 63},  # only one counted token
]


def get_inputs():
    logits = torch.randn(tokens, vocab) * 3.0 + torch.randn(tokens, 1) * 10.0
    targets = torch.randint(0, vocab, (tokens,), dtype=torch.int64)
    ignored = torch.randperm(tokens)[:num_ignored]
    targets[ignored] = -100
    return [logits, targets]


def get_init_inputs():
    return [-100]


def flops(logits, targets):
    return 4.0 * logits.numel()  # max, subtract, exp, add


def bytes_moved(logits, targets):
    return logits.numel() * logits.element_size() + targets.numel() * 8.0 + 4.0
