"""Paged GQA decode attention in C/OpenMP: split-K FlashDecoding through the block table.

Work items are (sequence, KV head, split of the context). Each walks its token range, turns
(page, slot) into row offsets through the block table 32 tokens at a time, and runs one fused
tile step for all ``group`` query heads of the KV head: scores, online softmax, weighted sum of
V -- each K/V row is read once. Pages are 16+ tokens of one head, i.e. contiguous rows, so the
gather costs little (the vAttention observation). Splits of long sequences keep both cores busy
for batch 1; partial states are merged at the end. The tile step, split chooser and merge are
``karena/decode.h``'s (vmath vectors, built with ``SIMD_FLAGS``: AVX-512, AVX2+FMA and generic).
"""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include "karena/decode.h"

/* q: [B, Hkv*G, D]; kc, vc: [NB, BS, Hkv, D]; table: int32 [B, MB]; lens: int32 [B]; out like q.
   qscale = 1/sqrt(D). */
void paged_attn(const float* q, const float* kc, const float* vc, const int* table, const int* lens, float* out,
                long B, long Hkv, long G, long D, long BS, long MB, long NB, float qscale) {
  long Dp = kd_pad(D), pairs = B * Hkv, maxlen = 1;
  for (long b = 0; b < B; b++) maxlen = lens[b] > maxlen ? lens[b] : maxlen;
  long nsplit = kd_splits(pairs, maxlen, 256), items = pairs * nsplit;
  const kd_parts P = kd_parts_new(items, G, Dp);
  long row = Hkv * D; /* stride between consecutive slots of a page */
  #pragma omp parallel
  {
    float* qs = kd_scratch(G, Dp);
    float* sc = qs + G * Dp;
    long offs[KD_TK];
    #pragma omp for schedule(dynamic, 1)
    for (long it = 0; it < items; it++) {
      long pair = it / nsplit, sp = it % nsplit, b = pair / Hkv, h = pair % Hkv;
      long n = lens[b] < 0 ? 0 : lens[b];
      if (n > MB * BS) n = MB * BS;
      long s0 = n * sp / nsplit, s1 = n * (sp + 1) / nsplit;
      kd_load_q(qs, q + pair * G * D, G, D, Dp, qscale);
      float *m = P.m + it * G, *l = P.l + it * G, *acc = P.acc + it * G * Dp;
      kd_init(G, Dp, m, l, acc);
      const float *kb = kc + h * D, *vb = vc + h * D;
      const int* tb = table + b * MB;
      long cnt = 0;
      for (long p = s0; p < s1; p++) {
        long page = tb[p / BS];
        if (page < 0 || page >= NB) continue;
        offs[cnt++] = (page * BS + p % BS) * row;
        if (cnt == KD_TK) { kd_tile(qs, kb, vb, offs, cnt, D, Dp, G, m, l, acc, sc, 1); cnt = 0; }
      }
      if (cnt) kd_tile(qs, kb, vb, offs, cnt, D, Dp, G, m, l, acc, sc, 1);
    }
    free(qs);
  }
  kd_parts_finish(P, pairs, nsplit, G, D, Dp, out);
}
"""

_ARGS = ["ptr"] * 6 + ["long"] * 7 + ["float"]
_LIB = load_library(_SRC, functions={"paged_attn": (None, _ARGS)}, flags=SIMD_FLAGS)


class ModelNew(nn.Module):
    """Fused paged decode attention (same interface as the task's Model)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_table: torch.Tensor,
        context_lens: torch.Tensor,
    ) -> torch.Tensor:
        q, k_cache, v_cache = q.contiguous(), k_cache.contiguous(), v_cache.contiguous()
        table = block_table.to(torch.int32).contiguous()
        lens = context_lens.to(torch.int32).contiguous()
        b, n_q, d = q.shape
        num_blocks, block_size, n_kv = k_cache.shape[0], k_cache.shape[1], k_cache.shape[2]
        out = torch.empty_like(q)
        qscale = 1.0 / math.sqrt(d)
        _LIB.paged_attn(
            q.data_ptr(), k_cache.data_ptr(), v_cache.data_ptr(), table.data_ptr(), lens.data_ptr(), out.data_ptr(),
            b, n_kv, n_q // n_kv, d, block_size, table.shape[1], num_blocks, qscale,
        )  # fmt: skip
        return out
