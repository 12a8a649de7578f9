"""Causal prefill attention in C/OpenMP, FlashAttention-2 style.

Per (batch*head, 64-row query tile): stream 64-key K/V tiles up to the diagonal (tiles above it
are skipped, which halves the work), computing S = Q K^T and O += P V with 4x64 register-blocked
micro-kernels (GCC vector extensions, 16 accumulators) and an online softmax in the exp2 domain
(queries pre-scaled by log2(e)/sqrt(d)); the seq x seq score matrix never exists. K is packed
once per head into K^T tiles so the score micro-kernel broadcasts q and streams contiguous keys;
query tiles are handed out heaviest-first to balance the triangular work across threads.
"""

import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
#include "karena/flash.h"

#define BR 64

/* q, k, v, out: [BH, S, D] contiguous; qscale = log2(e) / sqrt(D). */
void causal_attn(const float* q, const float* k, const float* v, float* out, long BH, long S, long D,
                 float qscale) {
  long Dp = (D + 15) & ~15L, nt = (S + BC - 1) / BC, Sp = nt * BC;
  float* kt = (float*)aligned_alloc(64, sizeof(float) * BH * nt * Dp * BC);
  float* vp = (float*)aligned_alloc(64, sizeof(float) * BH * Sp * Dp);
  #pragma omp parallel for schedule(static)
  for (long bh = 0; bh < BH; bh++)
    pack_kv(k + bh * S * D, v + bh * S * D, S, D, Dp, kt + bh * nt * Dp * BC, vp + bh * Sp * Dp);
  long items = BH * nt;
  #pragma omp parallel
  {
    float* qb = (float*)aligned_alloc(64, sizeof(float) * BR * Dp);
    float* ob = (float*)aligned_alloc(64, sizeof(float) * BR * Dp);
    float* sbuf = (float*)aligned_alloc(64, sizeof(float) * 4 * BC);
    float m[BR], l[BR];
    long lim[BR];
    const float* qp[BR];
    float* op[BR];
    for (long r = 0; r < BR; r++) { qp[r] = qb + r * Dp; op[r] = ob + r * Dp; }
    /* heaviest (last) query tiles first: causal work grows with the tile index */
    #pragma omp for schedule(dynamic, 1)
    for (long it = 0; it < items; it++) {
      long qt = nt - 1 - it / BH, bh = it % BH;
      long q0 = qt * BR, nr = S - q0 < BR ? S - q0 : BR, nrp = (nr + 3) & ~3L;
      memset(qb, 0, sizeof(float) * nrp * Dp);
      memset(ob, 0, sizeof(float) * nrp * Dp);
      for (long r = 0; r < nr; r++) {
        const float* src = q + (bh * S + q0 + r) * D;
        for (long d = 0; d < D; d++) qb[r * Dp + d] = src[d] * qscale;
      }
      for (long r = 0; r < nrp; r++) { m[r] = -INFINITY; l[r] = 0.f; }
      for (long t = 0; t <= qt; t++) {
        long ks = t * BC, nk = S - ks < BC ? S - ks : BC;
        for (long r = 0; r < nrp; r++) lim[r] = t < qt ? nk : q0 + r - ks + 1;
        attend_tile(nrp, qp, op, m, l, kt + (bh * nt + t) * Dp * BC, vp + (bh * Sp + ks) * Dp, nk, lim, D, Dp,
                    sbuf);
      }
      for (long r = 0; r < nr; r++) {
        float inv = 1.f / l[r];
        float* dst = out + (bh * S + q0 + r) * D;
        for (long d = 0; d < D; d++) dst[d] = ob[r * Dp + d] * inv;
      }
    }
    free(qb);
    free(ob);
    free(sbuf);
  }
  free(kt);
  free(vp);
}
"""

_ARGS = ["ptr"] * 4 + ["long"] * 3 + ["float"]
_LIB = load_library(_SRC, flags=FLAGS, functions={"causal_attn": (None, _ARGS)})


class ModelNew(nn.Module):
    """Fused causal flash attention (same interface as the task's Model)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        b, h, s, d = q.shape
        out = torch.empty_like(q)
        qscale = math.log2(math.e) / math.sqrt(d)
        _LIB.causal_attn(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), b * h, s, d, qscale)
        return out
