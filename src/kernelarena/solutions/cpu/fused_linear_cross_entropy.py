"""Cut Cross-Entropy on the CPU (C/OpenMP + AVX-512): the ``[tokens, vocab]`` logits never exist.

The LM-head GEMM is blocked over the vocabulary. Each thread owns a contiguous range of vocabulary
tiles of 12 rows of ``weight`` and streams them from DRAM exactly once. For every tile it computes
12 x 32 logits (12 vocabulary rows x 32 tokens) in 24 AVX-512 accumulators: the hidden states are
packed once, transposed into token-major panels ``[token_tile][d][32]``, so each k step is two
vector loads of hidden values and 12 broadcasts of weight values (FMA with embedded broadcast).
The k loop is blocked by 256 so the weight tile stays in L1 while all token tiles reuse it.
When a tile is complete its logits are folded, still in registers, into a running
``(max, sum of exp)`` per token (online log-sum-exp, one vectorised exp per logit). The target
logit is one dot product per token (in double). Per-thread partial (max, sum) pairs are merged in
a fixed order, so the loss does not depend on scheduling. Without AVX-512 a portable C path does
the same blocking with compiler-vectorised dot products.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define NV 12   /* vocabulary rows per register tile */
#define TT 32   /* tokens per register tile (2 x 16 lanes) */
#define KC 256  /* k block: a 12 x 256 weight block (12 KiB) stays in L1 */

static double dot_d(const float* a, const float* b, long n) {
  double s = 0.0;
  #pragma omp simd reduction(+:s)
  for (long i = 0; i < n; ++i) s += (double)a[i] * (double)b[i];
  return s;
}

#ifdef __AVX512F__
/* exp(x), |rel err| < 2 ulp on [-87, 88] (Cody-Waite reduction, degree-6 polynomial, scalef). */
static inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, n);
}

/* logits of NV weight rows (w, row stride d) x all token tiles, folded into (m, s) per token */
static void vocab_tile(const float* restrict w, long d, const float* restrict panels, long ntt,
                       int nv, float* restrict cbuf, float* restrict m, float* restrict s) {
  for (long kb = 0; kb < d; kb += KC) {
    long kc = d - kb < KC ? d - kb : KC;
    int last = kb + KC >= d;
    for (long tt = 0; tt < ntt; ++tt) {
      __m512 acc[NV][2];
      float* cb = cbuf + tt * NV * TT;
      if (kb == 0) {
        #pragma GCC unroll 12
        for (int j = 0; j < NV; ++j) { acc[j][0] = _mm512_setzero_ps(); acc[j][1] = _mm512_setzero_ps(); }
      } else {
        #pragma GCC unroll 12
        for (int j = 0; j < NV; ++j) {
          acc[j][0] = _mm512_load_ps(cb + j * TT);
          acc[j][1] = _mm512_load_ps(cb + j * TT + 16);
        }
      }
      const float* p = panels + (tt * d + kb) * TT;
      const float* wk = w + kb;
      for (long k = 0; k < kc; ++k) {
        __m512 h0 = _mm512_load_ps(p + k * TT);
        __m512 h1 = _mm512_load_ps(p + k * TT + 16);
        #pragma GCC unroll 12
        for (int j = 0; j < NV; ++j) {
          __m512 wv = _mm512_set1_ps(wk[j * d + k]);
          acc[j][0] = _mm512_fmadd_ps(wv, h0, acc[j][0]);
          acc[j][1] = _mm512_fmadd_ps(wv, h1, acc[j][1]);
        }
      }
      if (!last) {
        #pragma GCC unroll 12
        for (int j = 0; j < NV; ++j) {
          _mm512_store_ps(cb + j * TT, acc[j][0]);
          _mm512_store_ps(cb + j * TT + 16, acc[j][1]);
        }
        continue;
      }
      for (int hv = 0; hv < 2; ++hv) {  /* online log-sum-exp update, 16 tokens per vector */
        float* mp = m + tt * TT + hv * 16;
        float* sp = s + tt * TT + hv * 16;
        __m512 mo = _mm512_load_ps(mp);
        __m512 tmax = acc[0][hv];
        #pragma GCC unroll 12
        for (int j = 1; j < NV; ++j) if (j < nv) tmax = _mm512_max_ps(tmax, acc[j][hv]);
        __m512 mn = _mm512_max_ps(mo, tmax);
        __m512 sum = _mm512_mul_ps(_mm512_load_ps(sp), exp512(_mm512_sub_ps(mo, mn)));
        #pragma GCC unroll 12
        for (int j = 0; j < NV; ++j) if (j < nv) sum = _mm512_add_ps(sum, exp512(_mm512_sub_ps(acc[j][hv], mn)));
        _mm512_store_ps(mp, mn);
        _mm512_store_ps(sp, sum);
      }
    }
  }
}
#endif

void flce_f32(const float* restrict h, const float* restrict W, const long* restrict tgt,
              float* restrict out, long T, long d, long V, long ignore_index) {
  int nth = omp_get_max_threads();
  long ntt = (T + TT - 1) / TT, tpad = ntt * TT;
  float* m = (float*)aligned_alloc(64, sizeof(float) * tpad * nth);
  float* s = (float*)aligned_alloc(64, sizeof(float) * tpad * nth);
  for (long i = 0; i < tpad * nth; ++i) { m[i] = -INFINITY; s[i] = 0.f; }
  long nvt = (V + NV - 1) / NV;
#ifdef __AVX512F__
  /* token-major panels [tt][k][32], zero padded past T */
  float* panels = (float*)aligned_alloc(64, sizeof(float) * tpad * (d > 0 ? d : 1));
  #pragma omp parallel for schedule(static)
  for (long tt = 0; tt < ntt; ++tt)
    for (long k = 0; k < d; ++k)
      for (long i = 0; i < TT; ++i) {
        long t = tt * TT + i;
        panels[(tt * d + k) * TT + i] = t < T ? h[t * d + k] : 0.f;
      }
  #pragma omp parallel num_threads(nth)
  {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    long v0 = nvt * id / n, v1 = nvt * (id + 1) / n;
    float* cbuf = (float*)aligned_alloc(64, sizeof(float) * ntt * NV * TT);
    float* wpad = NULL;
    for (long vt = v0; vt < v1; ++vt) {
      long vb = vt * NV;
      int nv = V - vb < NV ? (int)(V - vb) : NV;
      const float* w = W + vb * d;
      if (nv < NV) {  /* last, partial tile: zero-padded copy, padded rows are masked out */
        wpad = (float*)calloc((size_t)NV * d, sizeof(float));
        memcpy(wpad, w, sizeof(float) * nv * d);
        w = wpad;
      }
      vocab_tile(w, d, panels, ntt, nv, cbuf, m + id * tpad, s + id * tpad);
    }
    free(wpad);
    free(cbuf);
  }
  free(panels);
#else
  #pragma omp parallel num_threads(nth)
  {
    int id = omp_get_thread_num(), n = omp_get_num_threads();
    long v0 = V * id / n, v1 = V * (id + 1) / n;
    float* mt = m + id * tpad;
    float* st = s + id * tpad;
    for (long v = v0; v < v1; ++v)
      for (long t = 0; t < T; ++t) {
        float x = 0.f;
        #pragma omp simd reduction(+:x)
        for (long k = 0; k < d; ++k) x += W[v * d + k] * h[t * d + k];
        if (x > mt[t]) { st[t] = st[t] * expf(mt[t] - x) + 1.f; mt[t] = x; }
        else st[t] += expf(x - mt[t]);
      }
  }
#endif
  double total = 0.0;
  long count = 0;
  for (long t = 0; t < T; ++t) {
    long y = tgt[t];
    if (y == ignore_index) continue;
    if (y < 0 || y >= V) { total = NAN; ++count; continue; }
    float mx = -INFINITY;
    for (int i = 0; i < nth; ++i) mx = m[i * tpad + t] > mx ? m[i * tpad + t] : mx;
    double sum = 0.0;
    for (int i = 0; i < nth; ++i)
      if (m[i * tpad + t] != -INFINITY) sum += (double)s[i * tpad + t] * exp((double)m[i * tpad + t] - mx);
    total += (double)mx + log(sum) - dot_d(h + t * d, W + y * d, d);
    ++count;
  }
  free(m);
  free(s);
  out[0] = (float)(total / (double)count);
}
"""

_LIB = load_library(
    _SRC, functions={"flce_f32": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self, d: int, vocab: int, ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index
        self.weight = nn.Parameter(torch.empty(vocab, d))

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        hidden = hidden.contiguous()
        w = self.weight.detach().contiguous()
        targets = targets.to(torch.int64).contiguous()
        tokens, d = hidden.shape
        loss = torch.empty((), dtype=hidden.dtype)
        _LIB.flce_f32(
            hidden.data_ptr(),
            w.data_ptr(),
            targets.data_ptr(),
            loss.data_ptr(),
            tokens,
            d,
            w.shape[0],
            self.ignore_index,
        )
        return loss
