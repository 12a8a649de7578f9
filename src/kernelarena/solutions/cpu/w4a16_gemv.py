"""W4A16 GEMV with in-register dequantization: the packed int4 weight is streamed exactly once.

Per group the dequantized dot product factors as
``sum_k x_k (q_k - z) s = s * (sum_k x_k q_k - z * sum_k x_k)``, so the inner loop only has to turn
codes into floats and FMA them with x; the group sum of x is precomputed once per call and the
zero point costs one scalar FMA per group. The inner loop loads 16 bytes (32 codes), widens them
to 16 int32 lanes, splits low/high nibbles with an AND and a shift (even/odd input channels) and
FMAs them against x, which is de-interleaved once per call into matching even/odd halves. All
1-4 tokens share every unpacked weight vector; OpenMP splits the output channels. W is never
materialized. Group sizes that are not a multiple of 32 (and CPUs without AVX-512) take a portable
scalar path with the same factorization.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* portable path: any even group size */
static void w4a16_portable(const float* restrict x, const uint8_t* restrict qw, const float* restrict sc,
                           const float* restrict zp, float* restrict y, long M, long K, long N, long G) {
  const long groups = K / G;
  #pragma omp parallel for schedule(static)
  for (long n = 0; n < N; ++n) {
    const uint8_t* qr = qw + n * (K / 2);
    for (long m = 0; m < M; ++m) {
      const float* xr = x + m * K;
      float total = 0.f;
      for (long g = 0; g < groups; ++g) {
        float dot = 0.f, xs = 0.f;
        for (long j = g * G / 2; j < (g + 1) * G / 2; ++j) {
          const float q0 = (float)(qr[j] & 15), q1 = (float)(qr[j] >> 4);
          dot += xr[2 * j] * q0 + xr[2 * j + 1] * q1;
          xs += xr[2 * j] + xr[2 * j + 1];
        }
        total += sc[n * groups + g] * (dot - zp[n * groups + g] * xs);
      }
      y[m * N + n] = total;
    }
  }
}

#if defined(__AVX512F__)
#include <immintrin.h>
#define AI static inline __attribute__((always_inline))

/* One output channel for MB tokens. xd: per token, per 32-wide chunk, 16 even then 16 odd inputs;
   xsum: per token, per group, sum of x. G % 32 == 0. */
AI void row_kernel(const int MB, const float* restrict xd, const float* restrict xsum,
                   const uint8_t* restrict qr, const float* restrict sr, const float* restrict zr,
                   float* restrict y, long N, long K, long G) {
  const long groups = K / G, chunks_per_group = G / 32;
  const __m512i low4 = _mm512_set1_epi32(15);
  __m512 yacc[4];
  float corr[4];
  for (int m = 0; m < MB; ++m) { yacc[m] = _mm512_setzero_ps(); corr[m] = 0.f; }
  for (long g = 0; g < groups; ++g) {
    __m512 de[4], dodd[4];
    for (int m = 0; m < MB; ++m) { de[m] = _mm512_setzero_ps(); dodd[m] = _mm512_setzero_ps(); }
    for (long c = g * chunks_per_group; c < (g + 1) * chunks_per_group; ++c) {
      const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(qr + c * 16)));
      const __m512 qe = _mm512_cvtepi32_ps(_mm512_and_si512(v, low4));
      const __m512 qo = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
      for (int m = 0; m < MB; ++m) {
        const float* xc = xd + m * K + c * 32;
        de[m] = _mm512_fmadd_ps(qe, _mm512_loadu_ps(xc), de[m]);
        dodd[m] = _mm512_fmadd_ps(qo, _mm512_loadu_ps(xc + 16), dodd[m]);
      }
    }
    const float s = sr[g], sz = sr[g] * zr[g];
    const __m512 sv = _mm512_set1_ps(s);
    for (int m = 0; m < MB; ++m) {
      yacc[m] = _mm512_fmadd_ps(sv, _mm512_add_ps(de[m], dodd[m]), yacc[m]);
      corr[m] += sz * xsum[m * groups + g];
    }
  }
  for (int m = 0; m < MB; ++m) y[m * N] = _mm512_reduce_add_ps(yacc[m]) - corr[m];
}

static void w4a16_avx512(const float* restrict x, const uint8_t* restrict qw, const float* restrict sc,
                         const float* restrict zp, float* restrict y, long M, long K, long N, long G) {
  const long groups = K / G;
  float* xd = (float*)aligned_alloc(64, sizeof(float) * (M * K + 16));
  float* xsum = (float*)malloc(sizeof(float) * (M * groups + 1));
  for (long m = 0; m < M; ++m) {
    const float* xr = x + m * K;
    float* dr = xd + m * K;
    for (long c = 0; c < K / 32; ++c)
      for (int i = 0; i < 16; ++i) { dr[c * 32 + i] = xr[c * 32 + 2 * i]; dr[c * 32 + 16 + i] = xr[c * 32 + 2 * i + 1]; }
    for (long g = 0; g < groups; ++g) {
      float s = 0.f;
      for (long k = g * G; k < (g + 1) * G; ++k) s += xr[k];
      xsum[m * groups + g] = s;
    }
  }
  #pragma omp parallel for schedule(static)
  for (long n = 0; n < N; ++n) {
    const uint8_t* qr = qw + n * (K / 2);
    const float* sr = sc + n * groups;
    const float* zr = zp + n * groups;
    for (long m0 = 0; m0 < M; m0 += 4) {
      const long mb = M - m0 < 4 ? M - m0 : 4;
      const float* xdm = xd + m0 * K;
      const float* xsm = xsum + m0 * groups;
      float* ym = y + m0 * N + n;
      switch (mb) {
        case 1: row_kernel(1, xdm, xsm, qr, sr, zr, ym, N, K, G); break;
        case 2: row_kernel(2, xdm, xsm, qr, sr, zr, ym, N, K, G); break;
        case 3: row_kernel(3, xdm, xsm, qr, sr, zr, ym, N, K, G); break;
        default: row_kernel(4, xdm, xsm, qr, sr, zr, ym, N, K, G); break;
      }
    }
  }
  free(xd); free(xsum);
}
#endif

void w4a16_gemv(const float* x, const uint8_t* qw, const float* sc, const float* zp, float* y,
                long M, long K, long N, long G) {
#if defined(__AVX512F__)
  if (G % 32 == 0) { w4a16_avx512(x, qw, sc, zp, y, M, K, N, G); return; }
#endif
  w4a16_portable(x, qw, sc, zp, y, M, K, N, G);
}
"""

_LIB = load_library(
    _SRC,
    functions={"w4a16_gemv": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, group_size: int):
        super().__init__()
        self.group_size = group_size
        groups = in_features // group_size
        self.register_buffer("qweight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
        self.register_buffer("scales", torch.zeros(out_features, groups))
        self.register_buffer("zeros", torch.zeros(out_features, groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qw = self.qweight.contiguous()
        sc = self.scales.contiguous()
        zp = self.zeros.contiguous()
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        m, k = x2.shape
        n = qw.shape[0]
        y = torch.empty(m, n, dtype=x.dtype)
        if m > 0 and n > 0:
            _LIB.w4a16_gemv(
                x2.data_ptr(),
                qw.data_ptr(),
                sc.data_ptr(),
                zp.data_ptr(),
                y.data_ptr(),
                m,
                k,
                n,
                self.group_size,
            )
        return y.view(*lead, n)
