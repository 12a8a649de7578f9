"""Ternary (BitNet b1.58) matmul template: masked additions and subtractions only, on
``karena/gemm.h``'s vector type where AVX-512's mask registers are absent.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does). Its knobs are the
choices the kernel had fixed: ``tb`` tokens share each pair of masks (the accumulators of a token
block, hence the register pressure, grow with it), ``chains`` the independent add chains a row
block keeps (``chains`` / tokens accumulators per token, 2 in a block of 8), ``x_block`` the bytes of reordered activations
one K block keeps hot (32 KiB: L1; more: fewer passes over the output at the price of L2 reads),
and the OpenMP split of the output rows (``_common.OMP_SPLIT``; static splits skip the barrier
between K blocks, dynamic ones keep it). ``DEFAULT`` (8 tokens, 16 chains, 32 KiB,
``schedule(static)``) renders the former hand-written solution.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import OMP_SPLIT, knob_render, omp_schedule, omp_split_valid

TASK = "ternary_matmul"

SPACE: dict[str, list[Any]] = {
    "tb": [1, 2, 4, 8],
    "chains": [8, 16],
    "x_block": [16 << 10, 32 << 10, 64 << 10, 256 << 10],
    **OMP_SPLIT,
}

DEFAULT: dict[str, Any] = {"tb": 8, "chains": 16, "x_block": 32 << 10, "schedule": "static", "chunk": 0}


def constraints(config: dict[str, Any]) -> bool:
    """Only the OpenMP split has an invalid combination: every (tb, chains) keeps at least one
    accumulator per token and at most 16 per token block (at most 8 per token without AVX-512)."""
    return omp_split_valid(config)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Token blocks of 4 and 8 (the decode variants have 1-8 tokens, prefill chunks more), both
    chain counts, K blocks of half, one and two L1s of ``hw`` (those in the space), rows split
    statically in one share per thread or dynamically in blocks of 8."""
    blocks = [b for b in SPACE["x_block"] if hw.l1d_bytes // 2 <= b <= 2 * hw.l1d_bytes] or [32 << 10]
    out = []
    for tb in (4, 8):
        for chains in SPACE["chains"]:
            for x_block in blocks:
                for schedule, chunk in (("static", 0), ("dynamic", 8)):
                    cfg = dict(tb=tb, chains=chains, x_block=x_block, schedule=schedule, chunk=chunk)
                    if constraints(cfg):
                        out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {
        "tokens_per_block": float(config["tb"]),
        "chains": float(config["chains"]),
        "x_block_over_l1": config["x_block"] / hw.l1d_bytes,
        "dynamic": float(config["schedule"] == "dynamic"),
    }


_DOC = """Ternary (BitNet b1.58) matmul with masked additions and subtractions only: no multiply per weight.

A 32-bit lane of the packed weight holds 16 ternary codes (4 bytes x 4 slots). For byte ``b`` and
slot ``i`` one ``vptestmd`` against the code's high bit gives a 16-bit mask of the lanes whose weight
is +1, and one ``vptestnmd`` against both bits the lanes whose weight is -1 (code 0); a masked
``vaddps`` and a masked ``vsubps`` then fold the matching activations into the accumulator. The
activations are reordered once per call (``xd[.., b, i, j] = x[256c + 16j + 4b + i]``) so that those
16 lanes line up with the 16 codes, and zero-padded to whole 64-byte chunks, so a zero-filled
masked tail load is harmless. Up to ``TN_TB`` tokens share each pair of masks; accumulators are split so at
least ``TN_CHAINS`` independent add chains hide the add latency; K is blocked so the reordered
activations of a token block fit in ``TN_XBLOCK`` bytes (L1 at the default 32 KiB). The per-tensor scale is one multiply per output. OpenMP
splits output channels. Without AVX-512 the same chunked kernel runs on the vector type of
``karena/gemm.h`` (8 lanes with AVX2, 4 otherwise): vector compares select the lanes and the masks
are ANDed into the activations' bits before one add and one subtract (still no multiply)."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
#include <stdint.h>
@KNOBS@
#include "karena/gemm.h"

#define CB (4 * KG_VW)   /* packed weight bytes per chunk: one vector of 32-bit lanes */
#define CW (16 * KG_VW)  /* weights per chunk */

#if defined(__AVX512F__)
#define AI static inline __attribute__((always_inline))

/* MB tokens, one output row, chunks [c0, c1) of 256 weights; returns per-token sums in out[] */
/* test patterns per s = 4 * byte + slot: the code's high bit (+1), and both bits (code 0 = -1) */
static uint32_t PLUS_BITS[16][16] __attribute__((aligned(64)));
static uint32_t CODE_BITS[16][16] __attribute__((aligned(64)));

__attribute__((constructor)) static void init_tables(void) {
  for (int s = 0; s < 16; ++s)
    for (int j = 0; j < 16; ++j) { PLUS_BITS[s][j] = 2u << (2 * s); CODE_BITS[s][j] = 3u << (2 * s); }
}

AI void row_block(const int MB, const uint8_t* restrict row, long rowbytes, const float* restrict xd,
                  long kp, long c0, long c1, float* restrict out) {
  enum { NA_MAX = TN_CHAINS };
  const int NA = MB >= 8 ? 2 : (TN_CHAINS / MB);
  __m512 acc[8][NA_MAX];
  for (int t = 0; t < MB; ++t)
    for (int a = 0; a < NA; ++a) acc[t][a] = _mm512_setzero_ps();
  for (long c = c0; c < c1; ++c) {
    const long left = rowbytes - c * 64;
    const __mmask64 lm = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
    const __m512i v = _mm512_maskz_loadu_epi8(lm, row + c * 64);  /* zero bytes: x is 0 there */
    #pragma GCC unroll 16
    for (int s = 0; s < 16; ++s) {                                   /* s = 4 * byte + slot */
      const __mmask16 plus = _mm512_test_epi32_mask(v, _mm512_load_si512(PLUS_BITS[s]));
      const __mmask16 minus = _mm512_testn_epi32_mask(v, _mm512_load_si512(CODE_BITS[s]));
      #pragma GCC unroll 8
      for (int t = 0; t < MB; ++t) {
        const __m512 xv = _mm512_loadu_ps(xd + t * kp + c * 256 + s * 16);
        __m512* a = &acc[t][s % NA];
        *a = _mm512_mask_add_ps(*a, plus, *a, xv);
        *a = _mm512_mask_sub_ps(*a, minus, *a, xv);
      }
    }
  }
  for (int t = 0; t < MB; ++t) {
    __m512 sum = acc[t][0];
    for (int a = 1; a < NA; ++a) sum = _mm512_add_ps(sum, acc[t][a]);
    out[t] = _mm512_reduce_add_ps(sum);
  }
}

#else
#define AI static inline __attribute__((always_inline))
typedef unsigned kg_vu __attribute__((vector_size(KG_VW * 4)));

/* the same add/sub selection with vector compares: lanes whose 2-bit code is 2 (+1) add x, code
   0 (-1) subtract it; a code's masks are ANDed into x's bits (no multiply) */
AI void row_block(const int MB, const uint8_t* restrict row, long rowbytes, const float* restrict xd,
                  long kp, long c0, long c1, float* restrict out) {
  enum { NA_MAX = TN_CHAINS };
  const int NA = MB >= 8 ? 2 : (TN_CHAINS / MB > 8 ? 8 : TN_CHAINS / MB);
  kg_vf acc[8][NA_MAX];
  for (int t = 0; t < MB; ++t)
    for (int a = 0; a < NA; ++a) acc[t][a] = (kg_vf){0};
  for (long c = c0; c < c1; ++c) {
    const long left = rowbytes - c * CB;
    kg_vu v = {0};
    memcpy(&v, row + c * CB, left >= CB ? CB : left);                /* zero bytes: x is 0 there */
    #pragma GCC unroll 16
    for (int s = 0; s < 16; ++s) {                                   /* s = 4 * byte + slot */
      const kg_vu code = (v >> (2 * s)) & 3u;
      const kg_vi plus = (kg_vi)(code == 2u), minus = (kg_vi)(code == 0u);
      #pragma GCC unroll 8
      for (int t = 0; t < MB; ++t) {
        const kg_vi xv = (kg_vi)kg_load(xd + t * kp + c * CW + s * KG_VW);
        kg_vf* a = &acc[t][s % NA];
        *a += (kg_vf)(xv & plus) - (kg_vf)(xv & minus);
      }
    }
  }
  for (int t = 0; t < MB; ++t) {
    kg_vf sum = acc[t][0];
    for (int a = 1; a < NA; ++a) sum += acc[t][a];
    float r = 0.f;
    for (int l = 0; l < KG_VW; ++l) r += sum[l];
    out[t] = r;
  }
}
#endif

void ternary_mm(const float* restrict x, const uint8_t* restrict qw, const float* scale_ptr, float* restrict y,
                long M, long K, long N) {
  const float scale = *scale_ptr;
  const long rowbytes = K / 4, chunks = (rowbytes + CB - 1) / CB, kp = chunks * CW;
  /* reorder x: chunk c, lane j, byte b, slot i  ->  xd[c*CW + (4b + i)*KG_VW + j] */
  float* xd = (float*)aligned_alloc(64, sizeof(float) * (M * kp + 16));
  for (long m = 0; m < M; ++m) {
    float* d = xd + m * kp;
    memset(d, 0, sizeof(float) * kp);
    for (long k = 0; k < K; ++k) {
      const long c = k / CW, r = k % CW, j = r / 16, b = (r % 16) / 4, i = r % 4;
      d[c * CW + (4 * b + i) * KG_VW + j] = x[m * K + k];
    }
  }
  #pragma omp parallel
  {
    float part[8];
    for (long m0 = 0; m0 < M; m0 += TN_TB) {
      const long mb = M - m0 < TN_TB ? M - m0 : TN_TB;
      /* K block: the block's reordered x for mb tokens fits in TN_XBLOCK bytes (of L1 or L2) */
      long kb = TN_XBLOCK / (sizeof(float) * CW * mb);
      if (kb < 1) kb = 1;
      for (long c0 = 0; c0 < chunks; c0 += kb) {
        const long c1 = c0 + kb < chunks ? c0 + kb : chunks;
        /* nowait (static schedules): every K block splits the rows identically (same bounds, same
           chunk), so a thread only revisits its own rows and the blocks need no barrier between
           them; a dynamic schedule deals rows out anew, so it keeps the barrier */
        #pragma omp for schedule(TN_SCHEDULE) TN_NOWAIT
        for (long n = 0; n < N; ++n) {
          const uint8_t* row = qw + n * rowbytes;
          const float* xm = xd + m0 * kp;
          switch (mb) {
            case 1: row_block(1, row, rowbytes, xm, kp, c0, c1, part); break;
            case 2: row_block(2, row, rowbytes, xm, kp, c0, c1, part); break;
            case 3: row_block(3, row, rowbytes, xm, kp, c0, c1, part); break;
            case 4: row_block(4, row, rowbytes, xm, kp, c0, c1, part); break;
            case 5: row_block(5, row, rowbytes, xm, kp, c0, c1, part); break;
            case 6: row_block(6, row, rowbytes, xm, kp, c0, c1, part); break;
            case 7: row_block(7, row, rowbytes, xm, kp, c0, c1, part); break;
            default: row_block(8, row, rowbytes, xm, kp, c0, c1, part); break;
          }
          for (long t = 0; t < mb; ++t) {
            float* dst = y + (m0 + t) * N + n;
            if (c0 == 0) *dst = part[t]; else *dst += part[t];
            if (c1 == chunks) *dst *= scale;
          }
        }
      }
    }
  }
  free(xd);
}

"""

_LIB = load_library(
    _SRC, flags=FLAGS, functions={"ternary_mm": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.register_buffer("qweight", torch.zeros(out_features, in_features // 4, dtype=torch.uint8))
        self.register_buffer("weight_scale", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qw = self.qweight.contiguous()
        scale = self.weight_scale.contiguous()
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        m, k = x2.shape
        n = qw.shape[0]
        y = torch.empty(m, n, dtype=x.dtype)
        if m > 0 and n > 0:
            _LIB.ternary_mm(x2.data_ptr(), qw.data_ptr(), scale.data_ptr(), y.data_ptr(), m, k, n)
        return y.view(*lead, n)
'''


def render(config: dict[str, Any]) -> str:
    """TN_TB tokens per block (at most 8), TN_CHAINS add chains per row block, TN_XBLOCK bytes of
    reordered x per K block; ``nowait`` between the K blocks only for a static split."""
    knobs = {"TN_TB": config["tb"], "TN_CHAINS": config["chains"], "TN_XBLOCK": config["x_block"]}
    knobs |= {"TN_SCHEDULE": omp_schedule(config), "TN_NOWAIT": "nowait" * (config["schedule"] == "static")}
    return knob_render(TASK, _SOLUTION, _DOC, config, knobs)
