"""T-MAC table-lookup GEMV for 2-bit bit-plane weights: lookups and adds, no multiply per weight.

Per token, every group of 4 activations gets a 16-entry fp32 table ``T_j[p] = sum_i bit_i(p) x[4j+i]``
(built with 4 FMAs against constant 0/1 bit vectors; K/4 tables, 64 KiB for K = 4096, kept in L2).
A vector table lookup serves ``KV_VW`` output channels at once (16 fp32 entries fill one AVX-512
register: one ``vpermps``; on AVX2 two ``vpermps`` and a blend on index bit 3; lane by lane on the
generic path; vectors are ``karena/vmath.h``'s ``kv_f``, one source for every path): the task's layout puts the 4-bit patterns of consecutive output channels
side by side (two per byte), so ``KV_VW`` bytes widened to int32 lanes index even channels directly
(the lookup uses the low 4 bits) and, shifted right by 4, odd channels. Each bit plane accumulates
its own sums; at the end of a quantization group the planes are combined with powers of two,
re-interleaved to channel order, and the group's scale and zero point are applied via
``s * (sum_b 2^b L_b - z * sum_group x)``. Tables stay fp32 (T-MAC also quantizes them to int8,
which would change the result), so the answer matches the dequantized reference. OpenMP splits
blocks of 128 output channels (a whole cache line of each plane per table row); within a block, each
group's rows stay in L1 while its chunks of ``2 * KV_VW`` channels are summed one after another.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>

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

#include <string.h>
#include "karena/vmath.h"

typedef uint8_t kv_b __attribute__((vector_size(KV_VW), aligned(1)));
#define BW 128          /* output channels per block: a 64-byte line of each plane per table row */
#define CW (2 * KV_VW)  /* channels per chunk: KV_VW bytes, even channels low nibbles, odd high */
#define NU (BW / CW)

/* t[idx & 15] per lane: one vpermps on AVX-512 (16 entries fill a register), two vpermps and a
   blend on bit 3 on AVX2, lane by lane on the generic path */
static inline kv_f lut16(const float* t, kv_i idx) {
#if KV_VW == 16
  return (kv_f)_mm512_permutexvar_ps((__m512i)idx, _mm512_loadu_ps(t));
#elif KV_VW == 8
  const __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), (__m256i)idx);
  const __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), (__m256i)idx);
  return (kv_f)_mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32((__m256i)idx, 28)));
#else
  kv_f r;
  for (int i = 0; i < KV_VW; ++i) r[i] = t[idx[i] & 15];
  return r;
#endif
}

/* channel order from even (e) and odd (o) channel vectors: lanes 0.., then the upper half */
#if KV_VW == 16
#define IL_LO (kv_i){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23}
#define IL_HI (kv_i){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31}
#elif KV_VW == 8
#define IL_LO (kv_i){0, 8, 1, 9, 2, 10, 3, 11}
#define IL_HI (kv_i){4, 12, 5, 13, 6, 14, 7, 15}
#else
#define IL_LO (kv_i){0, 4, 1, 5}
#define IL_HI (kv_i){2, 6, 3, 7}
#endif

/* output channels n0 .. n0 + BW (nvalid of them real) for one token. Per group and chunk, the
   group's table rows and plane bytes (jpg x 64 B per plane) stay in L1 across the chunks. */
static void block128(const float* restrict lut, const float* restrict xsum, const uint8_t* restrict qp,
                     const float* restrict sc, const float* restrict zp, float* restrict y,
                     long K, long N, long G, long n0, long nvalid) {
  const long K4 = K / 4, Nh = (N + 1) / 2, groups = K / G, jpg = G / 4;
  const uint8_t* p0 = qp + n0 / 2;            /* plane 0, row j = 0 */
  const uint8_t* p1 = qp + K4 * Nh + n0 / 2;  /* plane 1 */
  kv_f yacc[NU][2];
  for (int u = 0; u < NU; ++u) yacc[u][0] = yacc[u][1] = kv_set1(0.0f);
  const int nu = (int)((nvalid + CW - 1) / CW);
  for (long g = 0; g < groups; ++g) {
    const kv_f xs = kv_set1(xsum[g]);
    for (int u = 0; u < nu; ++u) {
      const long rows = nvalid - CW * u;             /* real channels in chunk u */
      const long nb = rows >= CW ? KV_VW : (rows + 1) / 2; /* bytes holding them */
      kv_f acc[4]; /* even plane 0, odd plane 0, even plane 1, odd plane 1 */
      for (int r = 0; r < 4; ++r) acc[r] = kv_set1(0.0f);
      for (long j = g * jpg; j < (g + 1) * jpg; ++j) {
        kv_b b0 = {0}, b1 = {0};
        if (nb == KV_VW) {
          b0 = *(const kv_b*)(p0 + j * Nh + KV_VW * u);
          b1 = *(const kv_b*)(p1 + j * Nh + KV_VW * u);
        } else { /* the last block's last chunk: never read past the plane's row */
          memcpy(&b0, p0 + j * Nh + KV_VW * u, (size_t)nb);
          memcpy(&b1, p1 + j * Nh + KV_VW * u, (size_t)nb);
        }
        const kv_i v0 = __builtin_convertvector(b0, kv_i), v1 = __builtin_convertvector(b1, kv_i);
        const float* t = lut + j * 16;
        acc[0] += lut16(t, v0);
        acc[1] += lut16(t, v0 >> 4);
        acc[2] += lut16(t, v1);
        acc[3] += lut16(t, v1 >> 4);
      }
      const kv_f e = 2.f * acc[2] + acc[0], o = 2.f * acc[3] + acc[1];
      const kv_f lo = __builtin_shuffle(e, o, IL_LO), hi = __builtin_shuffle(e, o, IL_HI);
      const float* sg = sc + g * N + n0 + CW * u;
      const float* zg = zp + g * N + n0 + CW * u;
      if (rows >= CW) {
        yacc[u][0] = kv_load(sg) * (lo - kv_load(zg) * xs) + yacc[u][0];
        yacc[u][1] = kv_load(sg + KV_VW) * (hi - kv_load(zg + KV_VW) * xs) + yacc[u][1];
      } else {
        const long r1 = rows - KV_VW;
        yacc[u][0] = kv_load_part(sg, rows < KV_VW ? rows : KV_VW, 0.f) *
                         (lo - kv_load_part(zg, rows < KV_VW ? rows : KV_VW, 0.f) * xs) + yacc[u][0];
        yacc[u][1] = kv_load_part(sg + KV_VW, r1, 0.f) * (hi - kv_load_part(zg + KV_VW, r1, 0.f) * xs) +
                     yacc[u][1];
      }
    }
  }
  for (int u = 0; u < nu; ++u) {
    const long rows = nvalid - CW * u;
    if (rows >= CW) {
      kv_store(y + n0 + CW * u, yacc[u][0]);
      kv_store(y + n0 + CW * u + KV_VW, yacc[u][1]);
    } else {
      kv_store_part(y + n0 + CW * u, yacc[u][0], rows < KV_VW ? rows : KV_VW);
      kv_store_part(y + n0 + CW * u + KV_VW, yacc[u][1], rows - KV_VW);
    }
  }
}

static void run_rows(const float* lut, const float* xsum, const uint8_t* qp, const float* sc,
                     const float* zp, float* y, long M, long K, long N, long G) {
  const long blocks = (N + BW - 1) / BW;
  #pragma omp parallel for schedule(static)
  for (long b = 0; b < blocks; ++b) {
    const long n0 = b * BW, nvalid = N - n0 < BW ? N - n0 : BW;
    for (long m = 0; m < M; ++m)
      block128(lut + m * (K / 4) * 16, xsum + m * (K / G), qp, sc, zp, y + m * N, K, N, G, n0, nvalid);
  }
}

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
    _SRC,
    flags=SIMD_FLAGS,
    functions={"tmac_gemv": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
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
