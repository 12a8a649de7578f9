"""W4A16 GEMV template on ``karena/vmath.h``: int4 group-quantized weights dequantized in registers
while the packed weight streams once.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does). Its knobs are the
choices the kernel had fixed: ``tb`` tokens share every unpacked weight vector (1-4: the
accumulators grow with it), ``split`` 2 keeps the products of the even and odd nibbles in two
accumulator chains per token and 1 in one (fewer live registers, half the independent FMA chains),
``unroll`` unrolls the loop over a group's chunks (1: as the compiler chooses), and the OpenMP
split of the output channels (``_common.OMP_SPLIT``). ``DEFAULT`` (4 tokens, two chains, no
unroll pragma, ``schedule(static)``) renders the former hand-written solution: after the
preprocessor, its C is that solution's.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import OMP_SPLIT, knob_render, omp_schedule, omp_split_valid

TASK = "w4a16_gemv"

SPACE: dict[str, list[Any]] = {"tb": [1, 2, 3, 4], "split": [1, 2], "unroll": [1, 2, 4, 8], **OMP_SPLIT}

DEFAULT: dict[str, Any] = {"tb": 4, "split": 2, "unroll": 1, "schedule": "static", "chunk": 0}


def _live_vectors(config: dict[str, Any]) -> int:
    """Vector registers the inner loop keeps live: per token the running sum and ``split`` group
    accumulators, the unpacked even and odd codes, and the two activation vectors."""
    return (1 + config["split"]) * config["tb"] + 4


def constraints(config: dict[str, Any]) -> bool:
    """Every register block fits 16 vector registers; only the OpenMP split has invalid
    combinations."""
    return omp_split_valid(config)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Token blocks of 1, 2 and 4 in both chain layouts (those whose live vectors fit ``hw``'s
    registers), unrolls up to a whole group of 128 codes at ``hw``'s vector width (4 chunks with
    AVX-512, 8 with AVX2), rows split statically in one share per thread or dynamically by 8."""
    regs = hw.vector_regs
    chunks_per_group = max(1, 128 // (2 * hw.simd_floats))
    out = []
    for tb in (1, 2, 4):
        for split in SPACE["split"]:
            for unroll in [u for u in SPACE["unroll"] if u <= chunks_per_group]:
                for schedule, chunk in (("static", 0), ("dynamic", 8)):
                    cfg = dict(tb=tb, split=split, unroll=unroll, schedule=schedule, chunk=chunk)
                    if _live_vectors(cfg) <= regs and constraints(cfg):
                        out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    regs = hw.vector_regs
    return {
        "live_regs_frac": _live_vectors(config) / regs,
        "chains": float(config["split"] * config["tb"]),
        "unroll": float(config["unroll"]),
        "dynamic": float(config["schedule"] == "dynamic"),
    }


_DOC = """W4A16 GEMV with in-register dequantization: the packed int4 weight is streamed exactly once.

Per group the dequantized dot product factors as
``sum_k x_k (q_k - z) s = s * (sum_k x_k q_k - z * sum_k x_k)``, so the inner loop only has to turn
codes into floats and FMA them with x; the group sum of x is precomputed once per call and the
zero point costs one scalar FMA per group. The inner loop loads one vector's worth of bytes (``KV_VW`` bytes:
16 on AVX-512, 8 on AVX2, 4 generic; two codes each), widens them to int32 lanes, splits low/high nibbles with an AND and a shift (even/odd input channels) and
FMAs them against x, which is de-interleaved once per call into matching even/odd halves. Up to
``W4_TB`` tokens (default 4) share every unpacked weight vector; OpenMP splits the output channels. W is never
materialized. Vectors are ``karena/vmath.h``'s ``kv_f`` (one source for AVX-512,
AVX2+FMA and generic). Group sizes that are not a multiple of ``2 * KV_VW`` take a portable scalar
path with the same factorization."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

@KNOBS@

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

#include "karena/vmath.h"
#define AI static inline __attribute__((always_inline))
#define CW (2 * KV_VW) /* codes per chunk: KV_VW bytes */
typedef uint8_t kv_b __attribute__((vector_size(KV_VW), aligned(1)));

/* One output channel for MB tokens. xd: per token, per CW-wide chunk, KV_VW even then KV_VW odd
   inputs; xsum: per token, per group, sum of x. G % CW == 0. */
AI void row_kernel(const int MB, const float* restrict xd, const float* restrict xsum,
                   const uint8_t* restrict qr, const float* restrict sr, const float* restrict zr,
                   float* restrict y, long N, long K, long G) {
  const long groups = K / G, chunks_per_group = G / CW;
  kv_f yacc[4];
  float corr[4];
  for (int m = 0; m < MB; ++m) { yacc[m] = kv_set1(0.0f); corr[m] = 0.f; }
  for (long g = 0; g < groups; ++g) {
    kv_f de[4], dodd[4];
    for (int m = 0; m < MB; ++m) { de[m] = kv_set1(0.0f); dodd[m] = kv_set1(0.0f); }
#if W4_UNROLL > 1
    W4_UNROLL_PRAGMA
#endif
    for (long c = g * chunks_per_group; c < (g + 1) * chunks_per_group; ++c) {
      const kv_i v = __builtin_convertvector(*(const kv_b*)(qr + c * KV_VW), kv_i); /* zero-extend */
      const kv_f qe = __builtin_convertvector(v & 15, kv_f);
      const kv_f qo = __builtin_convertvector(v >> 4, kv_f);
      for (int m = 0; m < MB; ++m) {
        const float* xc = xd + m * K + c * CW;
#if W4_SPLIT == 2
        de[m] = qe * kv_load(xc) + de[m];
        dodd[m] = qo * kv_load(xc + KV_VW) + dodd[m];
#else /* one chain: fewer live registers, half the independent FMAs (dodd stays zero) */
        de[m] = qo * kv_load(xc + KV_VW) + (qe * kv_load(xc) + de[m]);
#endif
      }
    }
    const float s = sr[g], sz = sr[g] * zr[g];
    for (int m = 0; m < MB; ++m) {
      yacc[m] = s * (de[m] + dodd[m]) + yacc[m];
      corr[m] += sz * xsum[m * groups + g];
    }
  }
  for (int m = 0; m < MB; ++m) y[m * N] = kv_hsum(yacc[m]) - corr[m];
}

static void w4a16_simd(const float* restrict x, const uint8_t* restrict qw, const float* restrict sc,
                       const float* restrict zp, float* restrict y, long M, long K, long N, long G) {
  const long groups = K / G;
  float* xd = (float*)aligned_alloc(64, sizeof(float) * (M * K + 16));
  float* xsum = (float*)malloc(sizeof(float) * (M * groups + 1));
  for (long m = 0; m < M; ++m) {
    const float* xr = x + m * K;
    float* dr = xd + m * K;
    for (long c = 0; c < K / CW; ++c)
      for (int i = 0; i < KV_VW; ++i) {
        dr[c * CW + i] = xr[c * CW + 2 * i];
        dr[c * CW + KV_VW + i] = xr[c * CW + 2 * i + 1];
      }
    for (long g = 0; g < groups; ++g) {
      float s = 0.f;
      for (long k = g * G; k < (g + 1) * G; ++k) s += xr[k];
      xsum[m * groups + g] = s;
    }
  }
  #pragma omp parallel for schedule(W4_SCHEDULE)
  for (long n = 0; n < N; ++n) {
    const uint8_t* qr = qw + n * (K / 2);
    const float* sr = sc + n * groups;
    const float* zr = zp + n * groups;
    for (long m0 = 0; m0 < M; m0 += W4_TB) {
      const long mb = M - m0 < W4_TB ? M - m0 : W4_TB;
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

void w4a16_gemv(const float* x, const uint8_t* qw, const float* sc, const float* zp, float* y,
                long M, long K, long N, long G) {
  if (G % CW == 0) { w4a16_simd(x, qw, sc, zp, y, M, K, N, G); return; }
  w4a16_portable(x, qw, sc, zp, y, M, K, N, G);
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
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
'''


def render(config: dict[str, Any]) -> str:
    """W4_TB tokens per pass over a weight row (at most 4), W4_SPLIT accumulator chains per token,
    W4_UNROLL the unroll of a group's chunk loop (1: no pragma, the compiler's choice)."""
    unroll = f'_Pragma("GCC unroll {config["unroll"]}")'
    knobs = {"W4_TB": config["tb"], "W4_SPLIT": config["split"], "W4_UNROLL": config["unroll"]}
    knobs |= {"W4_UNROLL_PRAGMA": unroll, "W4_SCHEDULE": omp_schedule(config)}
    return knob_render(TASK, _SOLUTION, _DOC, config, knobs)
