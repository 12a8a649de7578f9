"""Speculative-decoding verification (C/OpenMP): touch only what the decision needs.

Per sequence (sequences split across threads): the ``k`` acceptance tests read one value of ``p``
and one of ``q`` each, in order, stopping at the first rejection (tested as ``u * q < p``, which
equals ``u < min(1, p/q)`` for ``q > 0`` and ``u < 1``). Then only the target row ``p_n`` and, if a
draft was rejected, the draft row ``q_n`` are streamed: one vectorised pass sums
``max(0, p - q)``, a second pass re-reads both rows from L2 and writes the normalised residual
(streaming stores for large outputs: it is never re-read). The other ``k`` rows of each sequence
are never read. A single long sequence is split across threads by
vocabulary chunks instead, with partial sums merged in a fixed order.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include "karena/vmath.h"

static long n_accepted(const float* q, const float* p, const long* tok, const float* u, long k,
                       long vocab) {
  long n = 0;
  while (n < k) {
    long t = tok[n];
    float qv = q[n * vocab + t], pv = p[n * vocab + t];
    if (!(u[n] * qv < pv)) break;
    ++n;
  }
  return n;
}

/* outputs larger than this bypass the caches (streaming stores: no read-for-ownership) */
#define STREAM_BYTES (4L << 20)

/* sum of max(0, p - q) (q may be NULL); max(0, r) is written r * (r > 0): a select with a
   float-to-double conversion is not if-converted by gcc without -ffast-math, a multiply is */
static double residual_sum(const float* restrict p, const float* restrict q, long n) {
  double s = 0.0;
  if (q) {
    #pragma omp simd reduction(+:s)
    for (long i = 0; i < n; ++i) { float r = p[i] - q[i]; s += r * (float)(r > 0.f); }
  } else {
    #pragma omp simd reduction(+:s)
    for (long i = 0; i < n; ++i) { float r = p[i]; s += r * (float)(r > 0.f); }
  }
  return s;
}

/* out = max(0, p - q) * inv; p and q are re-read from L2 (the first pass just streamed them) */
static void residual_write(const float* restrict p, const float* restrict q, float* restrict out,
                           long n, double inv, int stream) {
  long i0 = 0;
  if (stream) {
    for (; i0 < n && ((uintptr_t)(out + i0) & (KV_VW * 4 - 1)); ++i0) {
      float r = p[i0] - (q ? q[i0] : 0.f);
      out[i0] = (float)((double)(r > 0.f ? r : 0.f) * inv);
    }
    typedef double kv_d __attribute__((vector_size(KV_VW * 8))); /* two registers' worth */
    for (; i0 + KV_VW <= n; i0 += KV_VW) {
      kv_f r = kv_load(p + i0);
      if (q) r = r - kv_load(q + i0);
      r = kv_max(r, kv_set1(0.f)); /* max(0, r), as the intrinsic path did (nan -> 0) */
      const kv_d d = __builtin_convertvector(r, kv_d) * inv;
      kv_stream(out + i0, __builtin_convertvector(d, kv_f));
    }
  }
  if (q) {
    #pragma omp simd
    for (long i = i0; i < n; ++i) {
      float r = p[i] - q[i];
      out[i] = (float)((double)(r * (float)(r > 0.f)) * inv);
    }
  } else {
    #pragma omp simd
    for (long i = i0; i < n; ++i) {
      float r = p[i];
      out[i] = (float)((double)(r * (float)(r > 0.f)) * inv);
    }
  }
}

void spec_accept_f32(const float* restrict q, const float* restrict p, const long* restrict tok,
                     const float* restrict u, long* restrict nacc, float* restrict res,
                     long batch, long k, long vocab) {
  int nt = omp_get_max_threads();
  int stream = batch * vocab * 4 >= STREAM_BYTES;
  if (batch >= nt) {
    #pragma omp parallel
    {
      #pragma omp for schedule(dynamic, 1) nowait
      for (long b = 0; b < batch; ++b) {
        const float* qb = q + b * k * vocab;
        const float* pb = p + b * (k + 1) * vocab;
        long n = n_accepted(qb, pb, tok + b * k, u + b * k, k, vocab);
        nacc[b] = n;
        const float* pn = pb + n * vocab;
        const float* qn = n < k ? qb + n * vocab : NULL;
        double s = residual_sum(pn, qn, vocab);
        residual_write(pn, qn, res + b * vocab, vocab, 1.0 / s, stream);
      }
      kv_sfence();  /* make this thread's streaming stores visible before the region ends */
    }
    return;
  }
  double* part = (double*)malloc(sizeof(double) * nt);
  for (long b = 0; b < batch; ++b) {  /* fewer sequences than threads: split the vocabulary */
    const float* qb = q + b * k * vocab;
    const float* pb = p + b * (k + 1) * vocab;
    long n = n_accepted(qb, pb, tok + b * k, u + b * k, k, vocab);
    nacc[b] = n;
    const float* pn = pb + n * vocab;
    const float* qn = n < k ? qb + n * vocab : NULL;
    float* out = res + b * vocab;
    double s = 0.0;
    #pragma omp parallel num_threads(nt)
    {
      int id = omp_get_thread_num(), m = omp_get_num_threads();
      long lo = vocab * id / m, hi = vocab * (id + 1) / m;
      part[id] = residual_sum(pn + lo, qn ? qn + lo : NULL, hi - lo);
      #pragma omp barrier
      #pragma omp single
      {
        for (int i = 0; i < m; ++i) s += part[i];  /* fixed order: deterministic */
      }
      residual_write(pn + lo, qn ? qn + lo : NULL, out + lo, hi - lo, 1.0 / s, 0);
    }
  }
  free(part);
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"spec_accept_f32": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(
        self,
        draft_probs: torch.Tensor,
        target_probs: torch.Tensor,
        draft_tokens: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = draft_probs.contiguous()
        p = target_probs.contiguous()
        tok = draft_tokens.to(torch.int64).contiguous()
        u = uniforms.contiguous()
        batch, k, vocab = q.shape
        nacc = torch.empty(batch, dtype=torch.int64)
        res = torch.empty(batch, vocab, dtype=p.dtype)
        _LIB.spec_accept_f32(
            q.data_ptr(),
            p.data_ptr(),
            tok.data_ptr(),
            u.data_ptr(),
            nacc.data_ptr(),
            res.data_ptr(),
            batch,
            k,
            vocab,
        )
        return nacc, res
