"""WindowKV window scores (C/OpenMP): fused skinny attention-score GEMM, softmax and pooling.

Per (batch, head), the observation queries (pre-scaled by 1/sqrt(d)) are packed once as a
[head_dim][16..64] panel; the key cache is streamed row by row as the broadcast operand of a
register tile (AVX-512: 12 keys x 32 queries, or 6 x 64; AVX2 and generic: 6 keys x 2 vectors
per column chunk; the tile of ``karena/scores.h`` on ``karena/vmath.h`` vectors, one source for
every path), so keys are read from memory exactly once
and never repacked (software prefetch one tile ahead keeps the 12 row streams in flight; the op
reads 4 bytes of keys per 16 FLOPs, so it runs at memory bandwidth). The transposed logits [keys][queries] stay in an L2-resident per-thread
buffer, where every softmax step is a vertical vector op across the queries: a running max, one
vectorized exp (vmath ``kv_exp_fast``) that also accumulates the
denominators, then each key's probability mass is a dot product with 1/denominator and is added
straight into its window's score. The [obs, seq] probabilities never reach memory.
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

void windowkv(const float* q, const float* k, float* out, long bh, long s, long w, long d, long win, float scale) {
  long pre = s - w, nwin = (pre + win - 1) / win;
  #pragma omp parallel
  {
    float* bp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(d * NB));
    float* buf = (float*)aligned_alloc(64, sizeof(float) * (size_t)(s * NB));
    float* tok = (float*)malloc(sizeof(float) * (size_t)(pre > 0 ? pre : 1));
    #pragma omp for schedule(dynamic, 1)
    for (long p = 0; p < bh; ++p) {
      const float* qh = q + p * w * d;
      const float* kh = k + p * s * d;
      for (long j = 0; j < pre; ++j) tok[j] = 0.f;
      for (long q0 = 0; q0 < w; q0 += NB) {
        long nq = w - q0 < NB ? w - q0 : NB;
        causal_block_mass(qh + q0 * d, nq, d, scale, kh, pre + q0, pre, bp, buf, tok);
      }
      float* o = out + p * nwin;
      for (long wi = 0; wi < nwin; ++wi) {
        long j0 = wi * win, j1 = j0 + win < pre ? j0 + win : pre;
        float acc = 0.f;
        for (long j = j0; j < j1; ++j) acc += tok[j];
        o[wi] = acc;
      }
    }
    free(bp); free(buf); free(tok);
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"windowkv": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, q_obs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q_obs = q_obs.contiguous()
        keys = keys.contiguous()
        b, h, s, d = keys.shape
        w = q_obs.shape[-2]
        nwin = -(-(s - w) // self.window)
        out = torch.empty(b, h, nwin, dtype=torch.float32)
        _LIB.windowkv(
            q_obs.data_ptr(), keys.data_ptr(), out.data_ptr(), b * h, s, w, d, self.window, 1.0 / math.sqrt(d)
        )
        return out
