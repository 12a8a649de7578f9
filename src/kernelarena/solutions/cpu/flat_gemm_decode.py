"""Flat GEMM for decode (FlashDecoding++): every weight row is streamed once for all M tokens.

With M <= 16 tokens the GEMM is bound by reading ``weight`` (N x K fp32). The kernel walks W in
groups of NR rows (NR = 2, 4 or 8 depending on M so that MR x NR accumulators fill ~16 of the 32
AVX-512 registers; 1, 2 or 4 of the 16 with AVX2 or generic), reduces along K with vector FMAs for
up to 8 tokens at a time, and finishes with one horizontal add per output. The rows of a group stay
in L1 while further token blocks reuse them, so W is read from memory exactly once; x (M x K) stays
in L2. OpenMP splits the row groups. No packing and no padding of M to a tile height: the waste
FlashDecoding++ measured in square-tiled GEMMs. The tiles are written once with the vector type of
``karena/gemm.h`` (16 lanes with AVX-512, 8 with AVX2, 4 otherwise).
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
#include "karena/gemm.h"

/* a vector of K elements starting at p, zero past the n (< KG_VW) that exist */
static inline kg_vf load_part(const float* p, long n) {
  kg_vf v = {0};
  memcpy(&v, p, sizeof(float) * n);
  return v;
}

static inline float hsum(kg_vf v) {
  float s = 0.f;
  for (int l = 0; l < KG_VW; ++l) s += v[l];
  return s;
}

/* tile_MR_NR: y[i][j] = dot(x row i, w row j) for MR tokens and NR weight rows, full K. */
#define DEF_TILE(MR, NR)                                                                        \
static void tile_##MR##_##NR(const float* restrict x, long ldx, const float* restrict w, long K, \
                             float* restrict y, long ldy) {                                     \
  kg_vf acc[MR][NR];                                                                            \
  for (int i = 0; i < MR; ++i)                                                                  \
    for (int j = 0; j < NR; ++j) acc[i][j] = (kg_vf){0};                                        \
  long k = 0;                                                                                   \
  for (; k + KG_VW <= K; k += KG_VW) {                                                          \
    kg_vf wv[NR];                                                                               \
    for (int j = 0; j < NR; ++j) wv[j] = kg_load(w + j * K + k);                                \
    for (int i = 0; i < MR; ++i) {                                                              \
      const kg_vf xv = kg_load(x + i * ldx + k);                                                \
      for (int j = 0; j < NR; ++j) acc[i][j] += xv * wv[j];                                     \
    }                                                                                           \
  }                                                                                             \
  if (k < K) {                                                                                  \
    kg_vf wv[NR];                                                                               \
    for (int j = 0; j < NR; ++j) wv[j] = load_part(w + j * K + k, K - k);                       \
    for (int i = 0; i < MR; ++i) {                                                              \
      const kg_vf xv = load_part(x + i * ldx + k, K - k);                                       \
      for (int j = 0; j < NR; ++j) acc[i][j] += xv * wv[j];                                     \
    }                                                                                           \
  }                                                                                             \
  for (int i = 0; i < MR; ++i)                                                                  \
    for (int j = 0; j < NR; ++j) y[i * ldy + j] = hsum(acc[i][j]);                              \
}

DEF_TILE(1, 1) DEF_TILE(2, 1) DEF_TILE(3, 1) DEF_TILE(4, 1)
DEF_TILE(5, 1) DEF_TILE(6, 1) DEF_TILE(7, 1) DEF_TILE(8, 1)
DEF_TILE(1, 2) DEF_TILE(2, 2) DEF_TILE(3, 2) DEF_TILE(4, 2)
DEF_TILE(5, 2) DEF_TILE(6, 2) DEF_TILE(7, 2) DEF_TILE(8, 2)
DEF_TILE(1, 4) DEF_TILE(2, 4) DEF_TILE(3, 4) DEF_TILE(4, 4)
DEF_TILE(1, 8) DEF_TILE(2, 8)

typedef void (*tile_fn)(const float*, long, const float*, long, float*, long);
static const tile_fn T1[9] = {0, tile_1_1, tile_2_1, tile_3_1, tile_4_1, tile_5_1, tile_6_1, tile_7_1, tile_8_1};
static const tile_fn T2[9] = {0, tile_1_2, tile_2_2, tile_3_2, tile_4_2, tile_5_2, tile_6_2, tile_7_2, tile_8_2};
static const tile_fn T4[9] = {0, tile_1_4, tile_2_4, tile_3_4, tile_4_4, 0, 0, 0, 0};
static const tile_fn T8[9] = {0, tile_1_8, tile_2_8, 0, 0, 0, 0, 0, 0};

void flat_gemm(const float* restrict x, const float* restrict w, float* restrict y, long M, long K, long N) {
  /* NR weight rows per group: MR x NR accumulators use about half of the vector registers (32
     with AVX-512, 16 otherwise), leaving room for the NR weight vectors */
#if KG_VW == 16
  const long NR = M <= 2 ? 8 : (M <= 4 ? 4 : 2);
#else
  const long NR = M <= 2 ? 4 : (M <= 4 ? 2 : 1);
#endif
  const tile_fn* TN = NR == 8 ? T8 : (NR == 4 ? T4 : (NR == 2 ? T2 : T1));
  const long MB = NR >= 4 ? (NR == 8 ? 2 : 4) : 8; /* token rows per tile for this NR */
  const long groups = (N + NR - 1) / NR;
  #pragma omp parallel for schedule(static)
  for (long g = 0; g < groups; ++g) {
    const long n0 = g * NR;
    const long nr = N - n0 < NR ? N - n0 : NR;
    for (long m0 = 0; m0 < M; m0 += MB) {
      const long mr = M - m0 < MB ? M - m0 : MB;
      if (nr == NR) {
        TN[mr](x + m0 * K, K, w + n0 * K, K, y + m0 * N + n0, N);
      } else {
        for (long j = 0; j < nr; ++j) T1[mr](x + m0 * K, K, w + (n0 + j) * K, K, y + m0 * N + n0 + j, N);
      }
    }
  }
}
"""

_LIB = load_library(
    _SRC, flags=FLAGS, functions={"flat_gemm": (None, ["ptr", "ptr", "ptr", "long", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.detach().contiguous()
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        m, k = x2.shape
        n = w.shape[0]
        y = torch.empty(m, n, dtype=x.dtype)
        if m > 0 and n > 0:
            _LIB.flat_gemm(x2.data_ptr(), w.data_ptr(), y.data_ptr(), m, k, n)
        return y.view(*lead, n)
