"""Arbitrary-bit (3/5/6-bit) weight GEMV: codes are cut out of the bitstream in registers.

16 codes of ``b`` bits always fill exactly ``2b`` whole bytes, so every 16-code chunk of a row starts
on a byte boundary. The kernel broadcasts the chunk's bytes to every 128-bit lane, gathers for
code ``i`` the 4 bytes starting at byte ``(i*b) / 8`` with one byte shuffle (``vpshufb`` on AVX-512 and
AVX2, ``__builtin_shuffle`` on the generic path), shifts each lane right by ``(i*b) % 8`` (a vector
shift: ``vpsrlvd``) and masks to ``b`` bits: a vector of codes in three instructions, whatever ``b`` is (the shuffle and shift tables are built per call from ``b``). The
codes are converted to fp32 and FMA'd against x in natural order; per group the zero point is
folded out (``s * (sum x q - z * sum x)``), the scale applied with one FMA and the group sum of x
precomputed once per call. Each weight byte is read once; OpenMP splits output channels. Vectors are
``karena/vmath.h``'s ``kv_f`` (AVX-512, AVX2+FMA and generic from one source); group sizes that are
not a multiple of 16 use a portable scalar extractor.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

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

#include <string.h>
#include "karena/vmath.h"

typedef uint8_t kv_b16 __attribute__((vector_size(16)));
typedef uint32_t kv_u __attribute__((vector_size(KV_VW * 4)));
#define NS (16 / KV_VW) /* vectors per 16-code chunk */

/* lane i of the result: the 4 bytes raw[idx[4i..4i+3]] (indices < 16), i.e. a byte gather from the
   chunk's 16 bytes into every 32-bit lane (vpshufb on the chunk broadcast to each 128-bit lane) */
static inline kv_u gather4(kv_b16 raw, const uint8_t* idx) {
#if KV_VW == 16 && defined(__AVX512BW__)
  return (kv_u)_mm512_shuffle_epi8(_mm512_broadcast_i32x4((__m128i)raw), _mm512_loadu_si512(idx));
#elif KV_VW == 8
  return (kv_u)_mm256_shuffle_epi8(_mm256_broadcastsi128_si256((__m128i)raw),
                                   _mm256_loadu_si256((const __m256i*)idx));
#elif KV_VW == 4
  kv_b16 m;
  memcpy(&m, idx, 16);
  return (kv_u)__builtin_shuffle(raw, m);
#else /* AVX-512F without BW */
  uint8_t r[16], o[4 * KV_VW];
  memcpy(r, &raw, 16);
  for (int i = 0; i < 4 * KV_VW; ++i) o[i] = r[idx[i]];
  kv_u v;
  memcpy(&v, o, sizeof v);
  return v;
#endif
}

/* G % 16 == 0: whole 16-code chunks (2b bytes each) inside each group. Every path cuts the codes out
   the same way: byte gather, per-lane variable right shift, mask. */
static void anybit_simd(const float* restrict x, const uint8_t* restrict qw, const float* restrict sc,
                        const float* restrict zp, const float* restrict xsum, float* restrict y,
                        long M, long K, long N, long G, int b) {
  const long rb = K * b / 8, groups = K / G, cpg = G / 16, chunk_bytes = 2 * b;
  /* code j of the chunk: bytes (j*b)/8 .. +3, shift (j*b)%8; vector s holds codes s*KV_VW.. */
  uint8_t shuf[NS][4 * KV_VW];
  uint32_t shift[NS][KV_VW];
  for (int j = 0; j < 16; ++j) {
    const int bo = (j * b) >> 3, sv = j / KV_VW, i = j % KV_VW;
    for (int t = 0; t < 4; ++t) shuf[sv][4 * i + t] = (uint8_t)(bo + t < 16 ? bo + t : 15);
    shift[sv][i] = (uint32_t)((j * b) & 7);
  }
  kv_u vshift[NS];
  for (int sv = 0; sv < NS; ++sv) memcpy(&vshift[sv], shift[sv], sizeof(kv_u));
  const uint32_t mask = (1u << b) - 1u;
  #pragma omp parallel for schedule(static)
  for (long n = 0; n < N; ++n) {
    const uint8_t* row = qw + n * rb;
    const float* sr = sc + n * groups;
    const float* zr = zp + n * groups;
    for (long m = 0; m < M; ++m) {
      const float* xm = x + m * K;
      kv_f yv = kv_set1(0.0f);
      float corr = 0.f;
      for (long g = 0; g < groups; ++g) {
        kv_f acc[2][NS];
        for (int sv = 0; sv < NS; ++sv) acc[0][sv] = acc[1][sv] = kv_set1(0.0f);
        for (long c = g * cpg; c < (g + 1) * cpg; ++c) {
          kv_b16 raw = {0};
          const uint8_t* src = row + c * chunk_bytes;
          if (c * chunk_bytes + 16 <= rb) memcpy(&raw, src, 16); /* never read past the row */
          else memcpy(&raw, src, (size_t)chunk_bytes);
          for (int sv = 0; sv < NS; ++sv) {
            const kv_u code = (gather4(raw, shuf[sv]) >> vshift[sv]) & mask;
            const kv_f q = __builtin_convertvector((kv_i)code, kv_f);
            acc[c & 1][sv] = kv_load(xm + c * 16 + sv * KV_VW) * q + acc[c & 1][sv];
          }
        }
        kv_f a = acc[0][0] + acc[1][0];
        for (int sv = 1; sv < NS; ++sv) a += acc[0][sv] + acc[1][sv];
        yv = sr[g] * a + yv;
        corr += sr[g] * zr[g] * xsum[m * groups + g];
      }
      y[m * N + n] = kv_hsum(yv) - corr;
    }
  }
}

void anybit_gemv(const float* x, const uint8_t* qw, const float* sc, const float* zp, float* y,
                 long M, long K, long N, long G, long bits) {
  float* xsum = (float*)malloc(sizeof(float) * (M * (K / G) + 1));
  xsums(x, M, K, G, xsum);
  if (G % 16 == 0 && bits >= 1 && bits <= 8)
    anybit_simd(x, qw, sc, zp, xsum, y, M, K, N, G, (int)bits);
  else
    anybit_portable(x, qw, sc, zp, xsum, y, M, K, N, G, (int)bits);
  free(xsum);
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
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
