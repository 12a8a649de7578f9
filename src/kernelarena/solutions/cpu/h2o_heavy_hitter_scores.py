"""H2O accumulated attention scores (C/OpenMP): causal blocks only, probabilities never stored.

Per (batch, head) and block of up to 64 queries (pre-scaled by 1/sqrt(d), packed once as a
[head_dim][64] panel), the keys the block can see -- the causal triangle only, half of what eager
PyTorch computes and then masks -- are streamed as the broadcast operand of a register tile
(AVX-512: 6 keys x 64 queries, 12 x 16..32 for narrow blocks; AVX2 and generic: 6 keys x 2 vectors
per column chunk; the tile of ``karena/scores.h`` on ``karena/vmath.h`` vectors, one source for every
path), with a software prefetch one tile ahead.
The transposed logits [keys][queries] stay in an L2-resident per-thread buffer, so each softmax
step is a vertical vector op across the block's queries: running max, a vectorized exp
(vmath ``kv_exp_fast``) that also accumulates the denominators, then every key's share of
the block's probability mass is a dot product with 1/denominator, added into its score. The
[q_len, seq] logits and probabilities never reach memory.
"""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "karena/scores.h" /* the register-tile score GEMM, on karena/vmath.h */

void h2o_scores(const float* q, const float* k, float* out, long bh, long s, long ql, long d, float scale) {
  long base = s - ql;   /* position of the first query */
  #pragma omp parallel
  {
    float* bp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(d * NB));
    float* buf = (float*)aligned_alloc(64, sizeof(float) * (size_t)(s * NB));
    #pragma omp for schedule(dynamic, 1)
    for (long p = 0; p < bh; ++p) {
      const float* qh = q + p * ql * d;
      const float* kh = k + p * s * d;
      float* tok = out + p * s;
      for (long j = 0; j < s; ++j) tok[j] = 0.f;
      for (long q0 = 0; q0 < ql; q0 += NB) {
        long nq = ql - q0 < NB ? ql - q0 : NB;
        causal_block_mass(qh + q0 * d, nq, d, scale, kh, base + q0, base + q0 + nq, bp, buf, tok);
      }
    }
    free(bp); free(buf);
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"h2o_scores": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = q.contiguous()
        k = k.contiguous()
        b, h, s, d = k.shape
        ql = q.shape[-2]
        out = torch.empty(b, h, s, dtype=torch.float32)
        _LIB.h2o_scores(q.data_ptr(), k.data_ptr(), out.data_ptr(), b * h, s, ql, d, 1.0 / math.sqrt(d))
        return out
