"""T-MAC table-lookup GEMV for 2-bit bit-plane weights: lookups and adds, no multiply per weight.

Per token, every group of 4 activations gets a 16-entry fp32 table ``T_j[p] = sum_i bit_i(p) x[4j+i]``
(built with 4 FMAs against constant 0/1 bit vectors; K/4 tables, 64 KiB for K = 4096, kept in L2).
Because 16 fp32 entries fill exactly one AVX-512 register, one ``vpermps`` looks a table up for 16
output channels at once: the task's layout puts the 4-bit patterns of consecutive output channels
side by side (two per byte), so 16 bytes widened to 16 int32 lanes index even channels directly
(``vpermps`` uses the low 4 bits) and, shifted right by 4, odd channels. Each bit plane accumulates
its own sums; at the end of a quantization group the planes are combined with powers of two,
re-interleaved to channel order, and the group's scale and zero point are applied via
``s * (sum_b 2^b L_b - z * sum_group x)``. Tables stay fp32 (T-MAC also quantizes them to int8,
which would change the result), so the answer matches the dequantized reference. OpenMP splits
blocks of 128 output channels (a whole cache line of
each plane per table). Without AVX-512 a scalar loop does the same lookups.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>

#define BITS 2

/* tables: lut[j*16 + p] = sum_i bit_i(p) * x[4j + i]; xsum[g] = sum of x over group g */
static void build_lut(const float* restrict x, long K, long G, float* restrict lut, float* restrict xsum) {
  for (long j = 0; j < K / 4; ++j) {
    const float* xj = x + 4 * j;
    for (int p = 0; p < 16; ++p)
      lut[j * 16 + p] = ((p & 1) ? xj[0] : 0.f) + ((p & 2) ? xj[1] : 0.f) + ((p & 4) ? xj[2] : 0.f) + ((p & 8) ? xj[3] : 0.f);
  }
  for (long g = 0; g < K / G; ++g) {
    float s = 0.f;
    for (long k = g * G; k < (g + 1) * G; ++k) s += x[k];
    xsum[g] = s;
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>

static inline __mmask16 mask16(long n) {
  return n >= 16 ? (__mmask16)0xFFFF : (n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u));
}

#define SUB 4 /* 4 x 32 channels per block: each table row load covers a whole 64-byte line per plane */

/* output channels n0 .. n0 + 128 (nvalid of them real) for one token */
static void block128(const float* restrict lut, const float* restrict xsum, const uint8_t* restrict qp,
                     const float* restrict sc, const float* restrict zp, float* restrict y,
                     long K, long N, long G, long n0, long nvalid) {
  const long K4 = K / 4, Nh = (N + 1) / 2, groups = K / G, jpg = G / 4;
  __mmask16 bm[SUB], lm[SUB], hm[SUB];
  for (int u = 0; u < SUB; ++u) {
    const long rows = nvalid - 32 * u;               /* real channels in sub-block u */
    bm[u] = mask16((rows + 1) / 2);                  /* bytes holding them */
    lm[u] = mask16(rows);
    hm[u] = mask16(rows - 16);
  }
  /* E holds even channels n0, n0+2, ..; O odd ones: interleave back with these indices */
  const __m512i il_lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i il_hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const uint8_t* p0 = qp + n0 / 2;            /* plane 0, row j = 0 */
  const uint8_t* p1 = qp + K4 * Nh + n0 / 2;  /* plane 1 */
  __m512 yacc[SUB][2];
  for (int u = 0; u < SUB; ++u) { yacc[u][0] = _mm512_setzero_ps(); yacc[u][1] = _mm512_setzero_ps(); }
  for (long g = 0; g < groups; ++g) {
    __m512 acc[SUB][4]; /* per sub-block: even plane 0, odd plane 0, even plane 1, odd plane 1 */
    for (int u = 0; u < SUB; ++u)
      for (int r = 0; r < 4; ++r) acc[u][r] = _mm512_setzero_ps();
    for (long j = g * jpg; j < (g + 1) * jpg; ++j) {
      const __m512 t = _mm512_loadu_ps(lut + j * 16);
      for (int u = 0; u < SUB; ++u) {
        const __m512i v0 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(bm[u], p0 + j * Nh + 16 * u));
        const __m512i v1 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(bm[u], p1 + j * Nh + 16 * u));
        acc[u][0] = _mm512_add_ps(acc[u][0], _mm512_permutexvar_ps(v0, t));
        acc[u][1] = _mm512_add_ps(acc[u][1], _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), t));
        acc[u][2] = _mm512_add_ps(acc[u][2], _mm512_permutexvar_ps(v1, t));
        acc[u][3] = _mm512_add_ps(acc[u][3], _mm512_permutexvar_ps(_mm512_srli_epi32(v1, 4), t));
      }
    }
    const __m512 two = _mm512_set1_ps(2.f);
    const __m512 xs = _mm512_set1_ps(xsum[g]);
    for (int u = 0; u < SUB; ++u) {
      const __m512 e = _mm512_fmadd_ps(two, acc[u][2], acc[u][0]);
      const __m512 o = _mm512_fmadd_ps(two, acc[u][3], acc[u][1]);
      const __m512 lo = _mm512_permutex2var_ps(e, il_lo, o), hi = _mm512_permutex2var_ps(e, il_hi, o);
      const float* sg = sc + g * N + n0 + 32 * u;
      const float* zg = zp + g * N + n0 + 32 * u;
      const __m512 slo = _mm512_maskz_loadu_ps(lm[u], sg), shi = _mm512_maskz_loadu_ps(hm[u], sg + 16);
      const __m512 zlo = _mm512_maskz_loadu_ps(lm[u], zg), zhi = _mm512_maskz_loadu_ps(hm[u], zg + 16);
      yacc[u][0] = _mm512_fmadd_ps(slo, _mm512_fnmadd_ps(zlo, xs, lo), yacc[u][0]);
      yacc[u][1] = _mm512_fmadd_ps(shi, _mm512_fnmadd_ps(zhi, xs, hi), yacc[u][1]);
    }
  }
  for (int u = 0; u < SUB; ++u) {
    _mm512_mask_storeu_ps(y + n0 + 32 * u, lm[u], yacc[u][0]);
    _mm512_mask_storeu_ps(y + n0 + 32 * u + 16, hm[u], yacc[u][1]);
  }
}

static void run_rows(const float* lut, const float* xsum, const uint8_t* qp, const float* sc,
                     const float* zp, float* y, long M, long K, long N, long G) {
  const long blocks = (N + 32 * SUB - 1) / (32 * SUB);
  #pragma omp parallel for schedule(static)
  for (long b = 0; b < blocks; ++b) {
    const long n0 = b * 32 * SUB, nvalid = N - n0 < 32 * SUB ? N - n0 : 32 * SUB;
    for (long m = 0; m < M; ++m)
      block128(lut + m * (K / 4) * 16, xsum + m * (K / G), qp, sc, zp, y + m * N, K, N, G, n0, nvalid);
  }
}

#else

static void run_rows(const float* lut, const float* xsum, const uint8_t* qp, const float* sc,
                     const float* zp, float* y, long M, long K, long N, long G) {
  const long K4 = K / 4, Nh = (N + 1) / 2, groups = K / G, jpg = G / 4;
  #pragma omp parallel for schedule(static)
  for (long n = 0; n < N; ++n) {
    const int shift = (n & 1) ? 4 : 0;
    for (long m = 0; m < M; ++m) {
      const float* lm = lut + m * K4 * 16;
      float total = 0.f;
      for (long g = 0; g < groups; ++g) {
        float acc = 0.f;
        for (int b = 0; b < BITS; ++b) {
          float part = 0.f;
          for (long j = g * jpg; j < (g + 1) * jpg; ++j)
            part += lm[j * 16 + ((qp[(b * K4 + j) * Nh + n / 2] >> shift) & 15)];
          acc += (float)(1 << b) * part;
        }
        total += sc[g * N + n] * (acc - zp[g * N + n] * xsum[m * groups + g]);
      }
      y[m * N + n] = total;
    }
  }
}
#endif

void tmac_gemv(const float* x, const uint8_t* qp, const float* sc, const float* zp, float* y,
               long M, long K, long N, long G) {
  float* lut = (float*)aligned_alloc(64, sizeof(float) * (M * (K / 4) * 16 + 16));
  float* xsum = (float*)malloc(sizeof(float) * (M * (K / G) + 1));
  for (long m = 0; m < M; ++m) build_lut(x + m * K, K, G, lut + m * (K / 4) * 16, xsum + m * (K / G));
  run_rows(lut, xsum, qp, sc, zp, y, M, K, N, G);
  free(lut); free(xsum);
}
"""

_LIB = load_library(
    _SRC, functions={"tmac_gemv": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, group_size: int):
        super().__init__()
        self.group_size = group_size
        self.out_features = out_features
        groups = in_features // group_size
        planes = torch.zeros(2, in_features // 4, (out_features + 1) // 2, dtype=torch.uint8)
        self.register_buffer("qplanes", planes)
        self.register_buffer("scales", torch.zeros(groups, out_features))
        self.register_buffer("zeros", torch.zeros(groups, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qp = self.qplanes.contiguous()
        sc = self.scales.contiguous()
        zp = self.zeros.contiguous()
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        m, k = x2.shape
        n = self.out_features
        y = torch.empty(m, n, dtype=x.dtype)
        if m > 0 and n > 0:
            _LIB.tmac_gemv(
                x2.data_ptr(),
                qp.data_ptr(),
                sc.data_ptr(),
                zp.data_ptr(),
                y.data_ptr(),
                m,
                k,
                n,
                self.group_size,
            )
        return y.view(*lead, n)
