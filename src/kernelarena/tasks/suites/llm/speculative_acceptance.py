"""Speculative-decoding verification: accepted-prefix length and the residual distribution.

A draft model proposed ``k`` tokens ``draft_tokens [batch, k]`` with probabilities
``draft_probs q [batch, k, vocab]``; the target model scored the same positions plus one more,
``target_probs p [batch, k + 1, vocab]``. With the uniform random numbers ``uniforms [batch, k]``
(inputs, so the result is deterministic), per sequence:

* draft token ``i`` (token ``x_i``) is accepted iff ``u_i < min(1, p_i[x_i] / q_i[x_i])``; the
  accepted prefix stops at the first rejection: ``num_accepted = n`` in ``[0, k]``;
* the next token is drawn from ``normalize(max(0, p_n - q_n))`` if ``n < k`` (the rejection
  residual that makes the scheme exact), or from ``p_k`` if every draft was accepted.

Returns ``(num_accepted int64 [batch], residual float [batch, vocab])`` (the distribution, not a
sample, so the output is continuous). Every step of speculative decoding in vLLM, TGI, SGLang and
TensorRT-LLM runs this; only ``k`` gathered values and one ``[vocab]`` row per sequence are needed,
while a naive implementation touches all ``k + 1`` rows.

Robust decisions: ``get_inputs`` computes every ratio ``min(1, p/q)`` in float64 and moves any
uniform that lies within ``GAP = 0.02`` of it by ``GAP`` to one side, so float32 evaluation,
float64 evaluation and the division-free form ``u * q < p`` all agree. Probabilities and uniforms
must stay in their ranges, so no input is perturbed (``PERTURB_INPUTS = []``).
"""

import torch
import torch.nn as nn

CATEGORY = "decoding"
SOURCE = (
    "Fast Inference from Transformers via Speculative Decoding (Leviathan et al., 2023); "
    "Accelerating LLM Decoding with Speculative Sampling (Chen et al., 2023)"
)
PERTURB_INPUTS: list[int] = []
GAP = 0.02


class Model(nn.Module):
    """Speculative sampling acceptance (modified rejection sampling) with given uniforms."""

    def __init__(self):
        super().__init__()

    def forward(
        self,
        draft_probs: torch.Tensor,
        target_probs: torch.Tensor,
        draft_tokens: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, k, _vocab = draft_probs.shape
        idx = draft_tokens.unsqueeze(-1)
        q_tok = draft_probs.gather(-1, idx).squeeze(-1)  # [batch, k]
        p_tok = target_probs[:, :k].gather(-1, idx).squeeze(-1)
        accept = uniforms < torch.clamp(p_tok / q_tok, max=1.0)
        num_accepted = accept.to(torch.int64).cumprod(dim=-1).sum(dim=-1)  # length of accepted prefix

        rows = torch.arange(batch)
        p_next = target_probs[rows, num_accepted]  # [batch, vocab]
        rejected = (num_accepted < k).unsqueeze(-1)
        q_next = draft_probs[rows, num_accepted.clamp(max=k - 1)] * rejected  # zero when all accepted
        residual = torch.clamp(p_next - q_next, min=0.0)
        return num_accepted, residual / residual.sum(dim=-1, keepdim=True)


batch = 32
k = 4
vocab = 128256

VARIANTS = [
    {"batch": 32, "k": 4, "vocab": 128256},  # Llama-3 vocabulary, 4 draft tokens
    {"batch": 1, "k": 7, "vocab": 32000},  # batch 1, long draft
    {"batch": 37, "k": 3, "vocab": 1001},  # odd sizes
    {"batch": 64, "k": 1, "vocab": 50257},  # a single draft token
]


def get_inputs():
    target_logits = torch.randn(batch, k + 1, vocab) * 2.0
    # the draft model approximates the target: its logits are the target's plus noise whose
    # strength varies per position, so acceptance rates range from high to low
    noise = torch.rand(batch, k, 1) * 1.2
    draft_logits = target_logits[:, :k] + torch.randn(batch, k, vocab) * noise
    p = torch.softmax(target_logits, dim=-1)
    q = torch.softmax(draft_logits, dim=-1)
    tokens = torch.multinomial(q.reshape(-1, vocab), 1).reshape(batch, k)
    u = torch.rand(batch, k)
    idx = tokens.unsqueeze(-1)
    ratio = (p[:, :k].gather(-1, idx).double() / q.gather(-1, idx).double()).squeeze(-1).clamp(max=1.0)
    near = (u.double() - ratio).abs() < GAP
    moved = torch.where(ratio >= 2 * GAP, ratio - GAP, ratio + GAP)
    u = torch.where(near, moved.float(), u)
    return [q, p, tokens, u]


def get_init_inputs():
    return []


def _accepted(q, p, tokens, u):
    kk = q.shape[1]
    idx = tokens.unsqueeze(-1)
    ratio = (p[:, :kk].gather(-1, idx) / q.gather(-1, idx)).squeeze(-1).clamp(max=1.0)
    return (u < ratio).to(torch.int64).cumprod(dim=-1).sum(dim=-1)


def flops(draft_probs, target_probs, draft_tokens, uniforms):
    return 3.0 * draft_probs.shape[0] * draft_probs.shape[-1]  # subtract/clamp, sum, scale


def bytes_moved(draft_probs, target_probs, draft_tokens, uniforms):
    """Minimum traffic: one target row per sequence, a draft row only where a draft was rejected."""
    batch, kk, vocab = draft_probs.shape
    rejected = int((_accepted(draft_probs, target_probs, draft_tokens, uniforms) < kk).sum())
    return 4.0 * vocab * (2 * batch + rejected) + batch * kk * (8.0 + 4.0 + 8.0) + batch * 8.0
