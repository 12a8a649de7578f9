"""Rotary position embedding (RoPE) applied to queries and keys, NeoX half-rotation convention.

For a head vector ``x`` of size ``d`` (even), ``h = d / 2``, frequencies
``inv_freq[i] = base^(-2i/d)`` and angles ``a[i] = position * inv_freq[i]``:

    out[i]     = x[i]     * cos(a[i]) - x[i + h] * sin(a[i])
    out[i + h] = x[i + h] * cos(a[i]) + x[i]     * sin(a[i])      for i < h

i.e. the first half of each head is rotated against the second half (GPT-NeoX / Llama in
Hugging Face ``rotate_half`` layout, not the interleaved GPT-J pairs ``(x[2i], x[2i+1])``).

Inputs: ``q [batch, seq, q_heads, d]``, ``k [batch, seq, kv_heads, d]`` (grouped-query attention:
fewer key heads), ``positions`` int64 ``[batch, seq]`` with arbitrary values (continuous batching and
packed sequences do not give ``arange``). Returns ``(q_rot, k_rot)``. Every attention layer of
Llama/Mistral/Qwen/NeoX applies it before the attention kernel; it is memory bound.

The angles are computed in float64 (``positions * inv_freq`` and cos/sin) and the tables then cast
to the activations' dtype: with float32 angles a position of 30000 carries an angle error of
~1e-3 rad, which would be an error of the reference, not of the kernel under test. A kernel must
therefore reduce the angle accurately (e.g. in double) before evaluating cos/sin.
"""

import torch
import torch.nn as nn

CATEGORY = "embedding"
SOURCE = "RoFormer (Su et al., 2021); GPT-NeoX (Black et al., 2022) rotate_half convention"


class Model(nn.Module):
    """Apply RoPE (NeoX half-rotation) to ``q`` and ``k`` at the given positions."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.head_dim // 2
        exponent = torch.arange(half, dtype=torch.float64) * 2.0 / self.head_dim
        inv_freq = self.base**-exponent  # [half]
        angles = positions.to(torch.float64)[..., None] * inv_freq  # [batch, seq, half]
        cos = angles.cos().to(q.dtype)[:, :, None, :]  # broadcast over heads
        sin = angles.sin().to(q.dtype)[:, :, None, :]

        def rotate(x: torch.Tensor) -> torch.Tensor:
            x1, x2 = x[..., :half], x[..., half:]
            return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

        return rotate(q), rotate(k)


batch = 1
seq = 1024
q_heads = 32
kv_heads = 8
head_dim = 128
max_position = 32768

VARIANTS = [
    {"batch": 1, "seq": 1024, "q_heads": 32, "kv_heads": 8, "head_dim": 128},  # Llama-3-8B prefill
    {"batch": 16, "seq": 1, "q_heads": 32, "kv_heads": 8, "head_dim": 128},  # decode step
    {"batch": 1, "seq": 37, "q_heads": 5, "kv_heads": 1, "head_dim": 80},  # odd sizes, half = 40
    {"batch": 3, "seq": 100, "q_heads": 12, "kv_heads": 12, "head_dim": 64},  # MHA, NeoX head size
    {"batch": 1, "seq": 3, "q_heads": 2, "kv_heads": 1, "head_dim": 6},
]


def get_inputs():
    q = torch.randn(batch, seq, q_heads, head_dim) * 3.0
    k = torch.randn(batch, seq, kv_heads, head_dim) * 3.0
    positions = torch.randint(0, max_position, (batch, seq), dtype=torch.int64)
    return [q, k, positions]


def get_init_inputs():
    return [head_dim, 10000.0]


def flops(q, k, positions):
    return 3.0 * (q.numel() + k.numel())  # two multiplies and an add per output element


def bytes_moved(q, k, positions):
    return 2.0 * (q.numel() + k.numel()) * q.element_size() + positions.numel() * 8.0
