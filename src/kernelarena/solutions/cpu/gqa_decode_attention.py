"""GQA decode attention in C/OpenMP: one streaming pass over the KV cache per KV head.

The kernel is ``karena/decode.h``'s contiguous GQA decode. Each work item is (batch, kv_head,
sequence split). It keeps ``group`` online-softmax states (running max, running sum, accumulator)
-- one per query head of the group -- so every K and V row is read from memory once and used
``group`` times. Scores for a tile of 32 keys are computed, the tile max folded into the running
max (one rescale per tile, not per key), and the weights (vmath's vectorized ``kv_exp_fast``)
applied to V while the tile is still in L1. When (batch x kv_heads) is too small to feed all
cores, the sequence is split (FlashDecoding's split-K) and the partial (max, sum, acc) triples are
merged at the end. Built with ``SIMD_FLAGS``: AVX-512, AVX2+FMA and generic vectors from one source."""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include "karena/decode.h"

/* q [B, Hkv*G, D], k/v [B, Hkv, S, D], out like q; qscale = 1/sqrt(D) */
void gqa_decode(const float* q, const float* k, const float* v, float* out, long B, long Hkv, long G, long S,
                long D, float qscale) {
  kd_gqa_decode(q, k, v, out, B, Hkv, G, S, D, qscale);
}
"""

_ARGS = ["ptr"] * 4 + ["long"] * 5 + ["float"]
_LIB = load_library(_SRC, functions={"gqa_decode": (None, _ARGS)}, flags=SIMD_FLAGS)


class ModelNew(nn.Module):
    """Fused GQA decode attention (same interface as the task's Model)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        b, n_q, d = q.shape
        n_kv, s = k.shape[1], k.shape[2]
        out = torch.empty_like(q)
        qscale = 1.0 / math.sqrt(d)
        _LIB.gqa_decode(
            q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), b, n_kv, n_q // n_kv, s, d, qscale
        )
        return out
