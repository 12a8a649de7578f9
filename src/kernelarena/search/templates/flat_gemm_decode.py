"""Flat GEMM (decode) template on ``karena/gemm.h``'s vector type: ``y = x @ W.T`` for up to 16
tokens, every weight row streamed once.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does). Its knobs are the
rows of W per group for few (``nr_m2``: M <= 2), some (``nr_m4``: M <= 4) and more tokens
(``nr_m16``), given for AVX-512's 32 vector registers and halved with 16 (the group's rows decide
the token rows of a tile: 8 rows take 2 tokens, 4 rows 4, fewer 8), and the OpenMP split of the row
groups (``_common.OMP_SPLIT``). ``DEFAULT`` (8, 4, 2 rows, ``schedule(static)``) renders the former
hand-written solution.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import OMP_SPLIT, knob_render, omp_schedule, omp_split_valid

TASK = "flat_gemm_decode"

SPACE: dict[str, list[Any]] = {"nr_m2": [2, 4, 8], "nr_m4": [2, 4, 8], "nr_m16": [2, 4, 8], **OMP_SPLIT}

DEFAULT: dict[str, Any] = {"nr_m2": 8, "nr_m4": 4, "nr_m16": 2, "schedule": "static", "chunk": 0}

# token rows per tile for a group of NR rows (the kernel's MB): the tiles it defines
_TOKENS_PER_TILE = {8: 2, 4: 4, 2: 8, 1: 8}


def constraints(config: dict[str, Any]) -> bool:
    """Every row count has its tiles (MR x NR accumulators at most 16); only the OpenMP split has
    an invalid combination."""
    return omp_split_valid(config)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Every row-count choice; rows split statically in one share per thread or dynamically in
    the largest chunks that leave each of ``hw``'s cores at least 16 chunks of the headline
    shape's row groups."""
    groups = 11008 // 2  # the headline variant (8 tokens, 11008 rows) at the default 2 rows a group
    chunk = max([c for c in OMP_SPLIT["chunk"] if c and c * 16 * hw.cores <= groups] or [1])
    out = []
    for nr_m2 in SPACE["nr_m2"]:
        for nr_m4 in SPACE["nr_m4"]:
            for nr_m16 in SPACE["nr_m16"]:
                for schedule, ch in (("static", 0), ("dynamic", chunk)):
                    cfg = dict(nr_m2=nr_m2, nr_m4=nr_m4, nr_m16=nr_m16, schedule=schedule, chunk=ch)
                    if constraints(cfg):
                        out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    regs = hw.vector_regs
    scale = 1 if regs == 32 else 2  # the kernel halves the rows with 16 registers
    out = {"dynamic": float(config["schedule"] == "dynamic")}
    for key, tokens in (("nr_m2", 2), ("nr_m4", 4), ("nr_m16", 16)):
        nr = config[key] // scale
        out[f"{key}_acc_regs_frac"] = min(tokens, _TOKENS_PER_TILE[nr]) * nr / regs
    return out


_DOC = """Flat GEMM for decode (FlashDecoding++): every weight row is streamed once for all M tokens.

With M <= 16 tokens the GEMM is bound by reading ``weight`` (N x K fp32). The kernel walks W in
groups of NR rows (``FG_NR_M2``, ``FG_NR_M4`` or ``FG_NR_M16`` for M <= 2, <= 4 or more, by default
8, 4 or 2 so that MR x NR accumulators fill ~16 of the 32 AVX-512 registers; half of them, 4, 2
or 1, with the 16 of AVX2 or generic), reduces along K with vector FMAs for
up to 8 tokens at a time, and finishes with one horizontal add per output. The rows of a group stay
in L1 while further token blocks reuse them, so W is read from memory exactly once; x (M x K) stays
in L2. OpenMP splits the row groups. No packing and no padding of M to a tile height: the waste
FlashDecoding++ measured in square-tiled GEMMs. The tiles are written once with the vector type of
``karena/gemm.h`` (16 lanes with AVX-512, 8 with AVX2, 4 otherwise)."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
@KNOBS@
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
  /* NR weight rows per group (the knobs are AVX-512's; half of them with 16 vector registers):
     with the defaults 8, 4, 2, MR x NR accumulators use about half of the vector registers (32
     with AVX-512, 16 otherwise), leaving room for the NR weight vectors */
#if KG_VW == 16
  const long NR = M <= 2 ? FG_NR_M2 : (M <= 4 ? FG_NR_M4 : FG_NR_M16);
#else
  const long NR = M <= 2 ? FG_NR_M2 / 2 : (M <= 4 ? FG_NR_M4 / 2 : FG_NR_M16 / 2);
#endif
  const tile_fn* TN = NR == 8 ? T8 : (NR == 4 ? T4 : (NR == 2 ? T2 : T1));
  const long MB = NR >= 4 ? (NR == 8 ? 2 : 4) : 8; /* token rows per tile for this NR */
  const long groups = (N + NR - 1) / NR;
  #pragma omp parallel for schedule(FG_SCHEDULE)
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
'''


def render(config: dict[str, Any]) -> str:
    """FG_NR_M2, FG_NR_M4, FG_NR_M16: W rows per group (AVX-512's; halved with 16 registers) for
    M <= 2, M <= 4 and more tokens."""
    knobs = {"FG_NR_M2": config["nr_m2"], "FG_NR_M4": config["nr_m4"], "FG_NR_M16": config["nr_m16"]}
    return knob_render(TASK, _SOLUTION, _DOC, config, knobs | {"FG_SCHEDULE": omp_schedule(config)})
