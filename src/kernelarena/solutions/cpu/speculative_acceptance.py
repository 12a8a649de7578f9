"""Speculative-decoding verification (C/OpenMP): touch only what the decision needs.

Per sequence (sequences split across threads): the ``k`` acceptance tests read one value of ``p``
and one of ``q`` each, in order, stopping at the first rejection (tested as ``u * q < p``, which
equals ``u < min(1, p/q)`` for ``q > 0`` and ``u < 1``). Then only the target row ``p_n`` and, if a
draft was rejected, the draft row ``q_n`` are streamed: one vectorised pass writes
``max(0, p - q)`` and accumulates its sum, a second pass rescales the row (still in L2). The other
``k`` rows of each sequence are never read. A single long sequence is split across threads by
vocabulary chunks instead, with partial sums merged in a fixed order.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <omp.h>
#include <stdlib.h>

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

/* out[i] = max(0, p[i] - q[i]) (q may be NULL); returns the sum */
static double residual_span(const float* restrict p, const float* restrict q, float* restrict out,
                            long n) {
  double s = 0.0;
  if (q) {
    #pragma omp simd reduction(+:s)
    for (long i = 0; i < n; ++i) { float r = p[i] - q[i]; r = r > 0.f ? r : 0.f; out[i] = r; s += r; }
  } else {
    #pragma omp simd reduction(+:s)
    for (long i = 0; i < n; ++i) { float r = p[i] > 0.f ? p[i] : 0.f; out[i] = r; s += r; }
  }
  return s;
}

static void scale_span(float* restrict out, long n, double inv) {
  #pragma omp simd
  for (long i = 0; i < n; ++i) out[i] = (float)((double)out[i] * inv);
}

void spec_accept_f32(const float* restrict q, const float* restrict p, const long* restrict tok,
                     const float* restrict u, long* restrict nacc, float* restrict res,
                     long batch, long k, long vocab) {
  int nt = omp_get_max_threads();
  if (batch >= nt) {
    #pragma omp parallel for schedule(dynamic, 1)
    for (long b = 0; b < batch; ++b) {
      const float* qb = q + b * k * vocab;
      const float* pb = p + b * (k + 1) * vocab;
      long n = n_accepted(qb, pb, tok + b * k, u + b * k, k, vocab);
      nacc[b] = n;
      float* out = res + b * vocab;
      double s = residual_span(pb + n * vocab, n < k ? qb + n * vocab : NULL, out, vocab);
      scale_span(out, vocab, 1.0 / s);
    }
    return;
  }
  double* part = (double*)malloc(sizeof(double) * nt);
  for (long b = 0; b < batch; ++b) {  /* fewer sequences than threads: split the vocabulary */
    const float* qb = q + b * k * vocab;
    const float* pb = p + b * (k + 1) * vocab;
    long n = n_accepted(qb, pb, tok + b * k, u + b * k, k, vocab);
    nacc[b] = n;
    float* out = res + b * vocab;
    const float* pn = pb + n * vocab;
    const float* qn = n < k ? qb + n * vocab : NULL;
    double s = 0.0;
    #pragma omp parallel num_threads(nt)
    {
      int id = omp_get_thread_num(), m = omp_get_num_threads();
      long lo = vocab * id / m, hi = vocab * (id + 1) / m;
      part[id] = residual_span(pn + lo, qn ? qn + lo : NULL, out + lo, hi - lo);
      #pragma omp barrier
      #pragma omp single
      {
        for (int i = 0; i < m; ++i) s += part[i];  /* fixed order: deterministic */
      }
      scale_span(out + lo, hi - lo, 1.0 / s);
    }
  }
  free(part);
}
"""

_LIB = load_library(
    _SRC,
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
