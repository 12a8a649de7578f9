"""Arbitrary-bit (3/5/6-bit) weight GEMV: codes are cut out of the bitstream in registers.

16 codes of ``b`` bits always fill exactly ``2b`` whole bytes, so every 16-code chunk of a row starts
on a byte boundary. The kernel broadcasts the chunk's bytes to the four 128-bit lanes, gathers for
lane ``i`` the 4 bytes starting at byte ``(i*b) / 8`` with one ``vpshufb``, shifts each lane right by
``(i*b) % 8`` with ``vpsrlvd`` and masks to ``b`` bits: 16 codes in int32 lanes in three
instructions, whatever ``b`` is (the shuffle and shift tables are built per call from ``b``). The
codes are converted to fp32 and FMA'd against x in natural order; per group the zero point is
folded out (``s * (sum x q - z * sum x)``), the scale applied with one FMA and the group sum of x
precomputed once per call. Each weight byte is read once; OpenMP splits output channels. Group
sizes that are not a multiple of 16, and CPUs without AVX-512, use a portable scalar extractor.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>

static void xsums(const float* x, long M, long K, long G, float* xsum) {
  for (long m = 0; m < M; ++m)
    for (long g = 0; g < K / G; ++g) {
      float s = 0.f;
      for (long k = g * G; k < (g + 1) * G; ++k) s += x[m * K + k];
      xsum[m * (K / G) + g] = s;
    }
}

static void anybit_portable(const float* restrict x, const uint8_t* restrict qw, const float* restrict sc,
                            const float* restrict zp, const float* restrict xsum, float* restrict y,
                            long M, long K, long N, long G, int b) {
  const long rb = K * b / 8, groups = K / G;
  const unsigned mask = (1u << b) - 1u;
  #pragma omp parallel for schedule(static)
  for (long n = 0; n < N; ++n) {
    const uint8_t* row = qw + n * rb;
    for (long m = 0; m < M; ++m) {
      float total = 0.f;
      for (long g = 0; g < groups; ++g) {
        float dot = 0.f;
        for (long k = g * G; k < (g + 1) * G; ++k) {
          const long bit = k * b, bo = bit >> 3;
          const int sh = (int)(bit & 7);
          unsigned w = row[bo];
          if (sh + b > 8) w |= (unsigned)row[bo + 1] << 8;
          dot += x[m * K + k] * (float)((w >> sh) & mask);
        }
        total += sc[n * groups + g] * (dot - zp[n * groups + g] * xsum[m * groups + g]);
      }
      y[m * N + n] = total;
    }
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>

/* G % 16 == 0: whole 16-code chunks inside each group */
static void anybit_avx512(const float* restrict x, const uint8_t* restrict qw, const float* restrict sc,
                          const float* restrict zp, const float* restrict xsum, float* restrict y,
                          long M, long K, long N, long G, int b) {
  const long rb = K * b / 8, groups = K / G, cpg = G / 16, chunk_bytes = 2 * b;
  /* lane i: bytes (i*b)/8 .. +3 of the 16-byte chunk copy in its 128-bit lane, shift (i*b)%8 */
  uint8_t shuf[64];
  uint32_t shift[16];
  for (int i = 0; i < 16; ++i) {
    const int bo = (i * b) >> 3;
    for (int t = 0; t < 4; ++t) shuf[4 * i + t] = (uint8_t)(bo + t < 16 ? bo + t : 15);
    shift[i] = (uint32_t)((i * b) & 7);
  }
  const __m512i vshuf = _mm512_loadu_si512(shuf);
  const __m512i vshift = _mm512_loadu_si512(shift);
  const __m512i vmask = _mm512_set1_epi32((1 << b) - 1);
  const __mmask16 cmask = (__mmask16)((1u << chunk_bytes) - 1u);
  #pragma omp parallel for schedule(static)
  for (long n = 0; n < N; ++n) {
    const uint8_t* row = qw + n * rb;
    const float* sr = sc + n * groups;
    const float* zr = zp + n * groups;
    for (long m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      __m512 yv = _mm512_setzero_ps();
      float corr = 0.f;
      for (long g = 0; g < groups; ++g) {
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (long c = g * cpg; c < (g + 1) * cpg; ++c) {
          /* masked 2b-byte load: never reads past the row, so never past the buffer */
          const __m128i raw = _mm_maskz_loadu_epi8(cmask, row + c * chunk_bytes);
          const __m512i win = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(raw), vshuf);
          const __m512i code = _mm512_and_si512(_mm512_srlv_epi32(win, vshift), vmask);
          const __m512 xv = _mm512_loadu_ps(xm + c * 16);
          if (c & 1) a1 = _mm512_fmadd_ps(xv, _mm512_cvtepi32_ps(code), a1);
          else a0 = _mm512_fmadd_ps(xv, _mm512_cvtepi32_ps(code), a0);
        }
        yv = _mm512_fmadd_ps(_mm512_set1_ps(sr[g]), _mm512_add_ps(a0, a1), yv);
        corr += sr[g] * zr[g] * xsum[m * groups + g];
      }
      y[m * N + n] = _mm512_reduce_add_ps(yv) - corr;
    }
  }
}
#endif

void anybit_gemv(const float* x, const uint8_t* qw, const float* sc, const float* zp, float* y,
                 long M, long K, long N, long G, long bits) {
  float* xsum = (float*)malloc(sizeof(float) * (M * (K / G) + 1));
  xsums(x, M, K, G, xsum);
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  if (G % 16 == 0 && bits >= 1 && bits <= 8)
    anybit_avx512(x, qw, sc, zp, xsum, y, M, K, N, G, (int)bits);
  else
#endif
    anybit_portable(x, qw, sc, zp, xsum, y, M, K, N, G, (int)bits);
  free(xsum);
}
"""

_LIB = load_library(
    _SRC,
    functions={
        "anybit_gemv": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long", "long"])
    },
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, group_size: int, nbits: int):
        super().__init__()
        self.group_size = group_size
        self.nbits = nbits
        groups = in_features // group_size
        self.register_buffer(
            "qweight", torch.zeros(out_features, in_features * nbits // 8, dtype=torch.uint8)
        )
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
            _LIB.anybit_gemv(
                x2.data_ptr(),
                qw.data_ptr(),
                sc.data_ptr(),
                zp.data_ptr(),
                y.data_ptr(),
                m,
                k,
                n,
                self.group_size,
                self.nbits,
            )
        return y.view(*lead, n)
