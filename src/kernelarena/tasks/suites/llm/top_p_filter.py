"""Nucleus (top-p) filtering of next-token probabilities, then renormalisation.

For each row of ``probs [batch, vocab]`` (rows sum to 1) keep the smallest set of most probable
tokens whose total probability is ``>= top_p``, zero every other token and divide the kept ones by
their sum. Equivalently: sort descending, keep token ``j`` of the sorted order iff the mass of the
tokens before it is ``< top_p``. Every sampling step of an LLM server with ``top_p < 1`` runs this
over the whole vocabulary; eager PyTorch sorts the full row although only the head matters.

Robustness of the discrete cut (the output is discontinuous in the inputs): ``get_inputs`` builds
peaked, LLM-like rows (softmax of a wide random tail plus a random head of 2-256 tokens holding
slightly more than ``top_p`` of the mass, so the cut falls in the head) and redraws any row whose
cut is fragile, so that on every row (1) ``top_p`` lies at least ``MARGIN`` away from the
cumulative mass just before and just after the boundary token and (2) the boundary token is
strictly more probable than the next one (no tie at the cut, so the sort order there is unique).
``MARGIN = 1e-4`` is far above float32 accumulation error over the few hundred head tokens, so
float32 and float64 evaluations agree on the cut, and the float64 reference is used for the
continuous values.
Inputs are not perturbed (scaling would break the probability simplex): ``PERTURB_INPUTS = []``.
"""

import logging

import torch
import torch.nn as nn

_log = logging.getLogger(__name__)

CATEGORY = "decoding"
SOURCE = "The Curious Case of Neural Text Degeneration (Holtzman et al., 2020)"
PERTURB_INPUTS: list[int] = []
MARGIN = 1e-4


class Model(nn.Module):
    """Top-p filter + renormalise: ``[batch, vocab]`` probabilities -> same shape."""

    def __init__(self, top_p: float):
        super().__init__()
        self.top_p = top_p

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        mass_before = torch.cumsum(sorted_p, dim=-1) - sorted_p
        keep_sorted = mass_before < self.top_p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        kept = torch.where(keep, probs, torch.zeros_like(probs))
        return kept / kept.sum(dim=-1, keepdim=True)


batch = 4
vocab = 128256
top_p = 0.9

VARIANTS = [
    {"batch": 4, "vocab": 128256, "top_p": 0.9},  # Llama-3 vocabulary, a small decode batch
    {"batch": 1, "vocab": 32000, "top_p": 0.95},  # batch 1
    {"batch": 37, "vocab": 1001, "top_p": 0.5},  # odd sizes
    {"batch": 8, "vocab": 50257, "top_p": 0.99},  # the cut reaches deep into the head
]


def _robust(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Per row: True when the cut (float32 values) cannot flip under float rounding."""
    sorted_p = torch.sort(probs.double(), dim=-1, descending=True).values
    cum = torch.cumsum(sorted_p, dim=-1)
    k = torch.searchsorted(cum, torch.full((probs.shape[0], 1), p, dtype=torch.float64))
    k = k.clamp(max=probs.shape[1] - 2)  # a cut on the last token is never robust (no successor)
    at = sorted_p.gather(1, k)
    after = cum.gather(1, k)
    before = after - at
    nxt = sorted_p.gather(1, k + 1)
    ok = (p - before >= MARGIN) & (after - p >= MARGIN) & (at > nxt)
    return ok.squeeze(1)


def _draw(n: int) -> torch.Tensor:
    """``n`` LLM-like rows: a wide tail plus a random head that holds more than ``top_p`` of the mass."""
    logits = torch.randn(n, vocab) * 2.0
    head_size = torch.randint(2, min(256, vocab // 2) + 1, (n, 1))
    in_head = torch.rand(n, vocab) * vocab < head_size  # about head_size random tokens per row
    in_head[:, 0] = True  # never an empty head (token 0 is as good as any: logits are i.i.d.)
    head_logits = torch.randn(n, vocab) * 1.5
    # shift the head so that its share of the mass is 1 - (1 - top_p) * U(0.05, 0.6) > top_p
    share = 1.0 - (1.0 - top_p) * (0.05 + 0.55 * torch.rand(n, 1))
    tail_sum = torch.where(in_head, 0.0, logits.exp()).sum(-1, keepdim=True)
    head_sum = torch.where(in_head, head_logits.exp(), 0.0).sum(-1, keepdim=True)
    shift = torch.log(share / (1.0 - share) * tail_sum / head_sum)
    logits = torch.where(in_head, head_logits + shift, logits)
    return torch.softmax(logits, dim=-1)


def get_inputs():
    probs = _draw(batch)
    for _attempt in range(100):  # redraw the rows whose cut is fragile
        bad = ~_robust(probs, top_p)
        if not bad.any():
            _log.debug("top_p_filter inputs after %d redraws", _attempt)
            return [probs]
        probs[bad] = _draw(int(bad.sum()))
    raise RuntimeError("could not draw rows with a robust top-p cut")


def get_init_inputs():
    return [top_p]


def flops(probs):
    return 3.0 * probs.numel()  # mass histogram, compare, scale


def bytes_moved(probs):
    return 2.0 * probs.numel() * probs.element_size()
