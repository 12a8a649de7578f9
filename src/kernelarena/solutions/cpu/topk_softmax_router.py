"""Fused MoE top-k router (C/OpenMP): float32 router GEMM with a certified top-k epilogue.

The router weight is packed once per call into 64-expert panels; a 6-token x 64-expert AVX-512
register tile (24 accumulators) computes the float32 logits of six tokens at a time, and the
epilogue runs while the tile is hot in L1: it finds the k-th largest float32 logit, keeps every
expert within ``2 * bound`` of it, where ``bound = gamma_d * ||x_t|| * max_e ||w_e||`` is a
rigorous bound on the float32 dot-product rounding error (any summation order, with FMA), and
re-evaluates only those few experts in float64 (exact products, double accumulation). The
float64 values decide the selection and its order and give the renormalized weights
(a softmax over the k selected logits: the full softmax denominator cancels). So the result
agrees with the task's float64 router while doing float32 work for all but ~k experts per token.
Tokens are split across OpenMP threads by 6-row tiles.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define MR 6
#define NR 64

/* Wp[p][k][64]: panel p holds experts 64p..64p+63 (zero padded), k-major for broadcast-FMA. */
static void pack_panels(const float* w, long n, long kdim, float* wp) {
  long np = (n + NR - 1) / NR;
  #pragma omp parallel for schedule(static)
  for (long p = 0; p < np; ++p) {
    float* dst = wp + p * kdim * NR;
    for (long k = 0; k < kdim; ++k)
      for (int j = 0; j < NR; ++j) {
        long e = p * NR + j;
        dst[k * NR + j] = e < n ? w[e * kdim + k] : 0.f;
      }
  }
}

/* c[6][64] = a rows (6 pointers) . panel (kdim x 64) */
static void micro_6x64(const float* const* a, const float* bp, long kdim, float* c) {
#ifdef __AVX512F__
  __m512 z = _mm512_setzero_ps();
  __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
  __m512 c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
  __m512 c40 = z, c41 = z, c42 = z, c43 = z, c50 = z, c51 = z, c52 = z, c53 = z;
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  for (long k = 0; k < kdim; ++k) {
    const float* b = bp + k * NR;
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    __m512 b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
    __m512 x;
#define ROW(i) x = _mm512_set1_ps(a##i[k]); \
    c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1); \
    c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2); c##i##3 = _mm512_fmadd_ps(x, b3, c##i##3);
    ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
  }
#define ST(i) _mm512_storeu_ps(c + i * NR, c##i##0); _mm512_storeu_ps(c + i * NR + 16, c##i##1); \
  _mm512_storeu_ps(c + i * NR + 32, c##i##2); _mm512_storeu_ps(c + i * NR + 48, c##i##3);
  ST(0) ST(1) ST(2) ST(3) ST(4) ST(5)
#undef ST
#else
  for (int i = 0; i < MR; ++i) {
    float acc[NR];
    for (int j = 0; j < NR; ++j) acc[j] = 0.f;
    for (long k = 0; k < kdim; ++k) {
      float xv = a[i][k];
      const float* b = bp + k * NR;
      #pragma omp simd
      for (int j = 0; j < NR; ++j) acc[j] = fmaf(xv, b[j], acc[j]);
    }
    for (int j = 0; j < NR; ++j) c[i * NR + j] = acc[j];
  }
#endif
}

static double dot_f64(const float* x, const float* w, long d) {
  double s = 0.0;
  #pragma omp simd reduction(+:s)
  for (long i = 0; i < d; ++i) s += (double)x[i] * (double)w[i];
  return s;
}

static double norm_f64(const float* x, long d) {
  double s = 0.0;
  #pragma omp simd reduction(+:s)
  for (long i = 0; i < d; ++i) s += (double)x[i] * (double)x[i];
  return sqrt(s);
}

void topk_router(const float* x, const float* w, float* out_w, long* out_id,
                 long t, long d, long e, long k) {
  long np = (e + NR - 1) / NR, ep = np * NR;
  float* wp = (float*)aligned_alloc(64, sizeof(float) * (size_t)(ep * d));
  pack_panels(w, e, d, wp);
  double wmax = 0.0;
  for (long j = 0; j < e; ++j) { double nn = norm_f64(w + j * d, d); if (nn > wmax) wmax = nn; }
  /* |fl32(x.w) - x.w| <= gamma_d * sum|x_i w_i| <= gamma_d * ||x|| ||w||, gamma_d = d u / (1 - d u) */
  const double u = ldexp(1.0, -24);
  const double gamma = (double)d * u / (1.0 - (double)d * u);
  long ntiles = (t + MR - 1) / MR;
  #pragma omp parallel
  {
    float* tile = (float*)aligned_alloc(64, sizeof(float) * (size_t)(MR * ep));
    float* ctile = (float*)aligned_alloc(64, sizeof(float) * MR * NR);
    long* cand = (long*)malloc(sizeof(long) * (size_t)e);
    double* cval = (double*)malloc(sizeof(double) * (size_t)e);
    float* topv = (float*)malloc(sizeof(float) * (size_t)k);
    #pragma omp for schedule(static)
    for (long ti = 0; ti < ntiles; ++ti) {
      long m0 = ti * MR;
      const float* a[MR];
      for (int i = 0; i < MR; ++i) a[i] = x + (m0 + i < t ? m0 + i : m0) * d;
      for (long p = 0; p < np; ++p) {
        micro_6x64(a, wp + p * d * NR, d, ctile);
        for (int i = 0; i < MR; ++i) memcpy(tile + i * ep + p * NR, ctile + i * NR, sizeof(float) * NR);
      }
      for (int i = 0; i < MR && m0 + i < t; ++i) {
        const float* lg = tile + i * ep;
        const float* xr = x + (m0 + i) * d;
        /* k-th largest float32 logit (insertion into a sorted list of k) */
        long nk = 0;
        for (long j = 0; j < e; ++j) {
          float v = lg[j];
          if (nk < k) { long q = nk++; while (q > 0 && topv[q - 1] < v) { topv[q] = topv[q - 1]; --q; } topv[q] = v; }
          else if (v > topv[k - 1]) { long q = k - 1; while (q > 0 && topv[q - 1] < v) { topv[q] = topv[q - 1]; --q; } topv[q] = v; }
        }
        double bound = gamma * norm_f64(xr, d) * wmax * 1.001 + 1e-300;
        double thr = (double)topv[k - 1] - 2.0 * bound;
        long nc = 0;
        for (long j = 0; j < e; ++j)
          if ((double)lg[j] >= thr) cand[nc++] = j;
        /* float64 re-evaluation of the candidates, then exact ordering (ties: lower id first) */
        for (long c = 0; c < nc; ++c) cval[c] = dot_f64(xr, w + cand[c] * d, d);
        for (long s = 0; s < k; ++s) {
          long best = s;
          for (long c = s + 1; c < nc; ++c)
            if (cval[c] > cval[best] || (cval[c] == cval[best] && cand[c] < cand[best])) best = c;
          double tv = cval[s]; cval[s] = cval[best]; cval[best] = tv;
          long ti2 = cand[s]; cand[s] = cand[best]; cand[best] = ti2;
        }
        double mx = cval[0], den = 0.0;
        for (long s = 0; s < k; ++s) den += exp(cval[s] - mx);
        float* ow = out_w + (m0 + i) * k;
        long* oi = out_id + (m0 + i) * k;
        for (long s = 0; s < k; ++s) { ow[s] = (float)(exp(cval[s] - mx) / den); oi[s] = cand[s]; }
      }
    }
    free(tile); free(ctile); free(cand); free(cval); free(topv);
  }
  free(wp);
}
"""

_LIB = load_library(
    _SRC, functions={"topk_router": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self, hidden: int, num_experts: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.weight = nn.Parameter(torch.empty(num_experts, hidden))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        t, d = x.shape
        e = w.shape[0]
        out_w = torch.empty(t, self.top_k, dtype=torch.float32)
        out_id = torch.empty(t, self.top_k, dtype=torch.int64)
        _LIB.topk_router(x.data_ptr(), w.data_ptr(), out_w.data_ptr(), out_id.data_ptr(), t, d, e, self.top_k)
        return out_w, out_id
