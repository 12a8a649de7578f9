"""W4A16 GEMV template: int4 group-quantized weights dequantized in registers while W streams once.

The activations are de-interleaved once per call into even/odd channel streams, so the low and high
nibbles of 16 consecutive weight bytes line up with two contiguous activation vectors. ``algo``:
``dequant`` computes ``(q - z) * s`` per weight; ``factored`` accumulates ``s * sum(q * x)`` and
subtracts ``s * z * sum(x)`` per group (one fewer op per weight). ``unpack``: nibbles by shift/mask
or through a 256-entry lookup table. ``nb`` weight rows x ``tb`` tokens per register block;
``chunk``/``schedule``: OpenMP split of the row blocks.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "w4a16_gemv"

SPACE: dict[str, list[Any]] = {
    "algo": ["dequant", "factored"],
    "unpack": ["shift", "lut"],
    "nb": [1, 2, 4, 8],
    "tb": [1, 2, 4],
    "chunk": [1, 8, 64],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    # nb x tb vector accumulators (+ the weight vectors) must fit in the register file
    return bool(config["nb"] * config["tb"] <= 16)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Register blocks using 1/8..1/2 of the vector registers, both algorithms and both unpack
    methods (whether an L1-resident 256-entry table beats the uint8->float conversion depends on
    the compiler's code for the conversion, so it is measured, not assumed), static chunks of 8
    row blocks (enough blocks per core to balance at N in the thousands)."""
    regs = 32 if hw.simd_bits >= 512 else 16
    out = []
    for algo in SPACE["algo"]:
        for unpack in SPACE["unpack"]:
            for nb in SPACE["nb"]:
                for tb in SPACE["tb"]:
                    cfg = dict(algo=algo, unpack=unpack, nb=nb, tb=tb, chunk=8, schedule="static")
                    if regs // 8 <= nb * tb <= regs // 2 and constraints(cfg):
                        out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    regs = 32 if hw.simd_bits >= 512 else 16
    return {"acc_regs_frac": config["nb"] * config["tb"] / regs}


_C = r"""
#include <stdint.h>
#include <stdlib.h>
#define NB @NB@
#define TB @TB@
#define FACTORED @FACTORED@
#define LUT @LUT@

typedef float vf __attribute__((vector_size(64)));
typedef unsigned char vu8 __attribute__((vector_size(16)));
static inline vf ldf(const float* p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline vu8 ldb(const uint8_t* p) { vu8 v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline float hsum(vf v) { float s = 0.f; for (int l = 0; l < 16; ++l) s += v[l]; return s; }

#if LUT
static float lut_lo[256], lut_hi[256];
__attribute__((constructor)) static void init_lut(void) {
    for (int b = 0; b < 256; ++b) { lut_lo[b] = (float)(b & 15); lut_hi[b] = (float)(b >> 4); }
}
static inline void unpack(vu8 b, vf* lo, vf* hi) {
    for (int l = 0; l < 16; ++l) { (*lo)[l] = lut_lo[b[l]]; (*hi)[l] = lut_hi[b[l]]; }
}
#else
static inline void unpack(vu8 b, vf* lo, vf* hi) {
    *lo = __builtin_convertvector(b & 15, vf);
    *hi = __builtin_convertvector(b >> 4, vf);
}
#endif

static void rows(const float* xe, const float* xo, const float* xs, const uint8_t* qw, const float* sc,
                 const float* zr, float* y, long T, long K, long N, long g, long n0) {
    const long kb = K / 2, gb = g / 2, G = K / g;
    const long nn = N - n0 < NB ? N - n0 : NB;
    const uint8_t* q[NB];
    for (int r = 0; r < NB; ++r) q[r] = qw + (n0 + (r < nn ? r : nn - 1)) * kb;
    for (long t0 = 0; t0 < T; t0 += TB) {
        const long tb = T - t0 < TB ? T - t0 : TB;
        const float *e[TB], *o[TB];
        for (int t = 0; t < TB; ++t) { long tt = t0 + (t < tb ? t : tb - 1); e[t] = xe + tt * kb; o[t] = xo + tt * kb; }
        vf acc[TB][NB];
        float tail[TB][NB];
        for (int t = 0; t < TB; ++t)
            for (int r = 0; r < NB; ++r) { acc[t][r] = (vf){0}; tail[t][r] = 0.f; }
        for (long gi = 0; gi < G; ++gi) {
            const long j0 = gi * gb, j1 = j0 + gb;
            float s[NB], z[NB];
            for (int r = 0; r < NB; ++r) {
                long n = n0 + (r < nn ? r : nn - 1);
                s[r] = sc[n * G + gi];
                z[r] = zr[n * G + gi];
            }
#if FACTORED
            vf d[TB][NB];
            for (int t = 0; t < TB; ++t)
                for (int r = 0; r < NB; ++r) d[t][r] = (vf){0};
#endif
            long j = j0;
            for (; j + 16 <= j1; j += 16) {
                vf xev[TB], xov[TB];
                for (int t = 0; t < TB; ++t) { xev[t] = ldf(e[t] + j); xov[t] = ldf(o[t] + j); }
                for (int r = 0; r < NB; ++r) {
                    vf lo, hi;
                    unpack(ldb(q[r] + j), &lo, &hi);
#if FACTORED
                    for (int t = 0; t < TB; ++t) d[t][r] += lo * xev[t] + hi * xov[t];
#else
                    const vf wl = (lo - z[r]) * s[r], wh = (hi - z[r]) * s[r];
                    for (int t = 0; t < TB; ++t) acc[t][r] += wl * xev[t] + wh * xov[t];
#endif
                }
            }
            for (; j < j1; ++j)
                for (int r = 0; r < NB; ++r) {
                    const float lo = (float)(q[r][j] & 15), hi = (float)(q[r][j] >> 4);
                    for (int t = 0; t < TB; ++t)
                        tail[t][r] += ((lo - z[r]) * e[t][j] + (hi - z[r]) * o[t][j]) * s[r];
                }
#if FACTORED
            for (int t = 0; t < TB; ++t)
                for (int r = 0; r < NB; ++r) {
                    acc[t][r] += d[t][r] * s[r];
                    tail[t][r] -= s[r] * z[r] * xs[(t0 + (t < tb ? t : tb - 1)) * (G + 1) + gi];
                }
#endif
        }
        for (long t = 0; t < tb; ++t)
            for (long r = 0; r < nn; ++r) y[(t0 + t) * N + n0 + r] = hsum(acc[t][r]) + tail[t][r];
    }
}

void w4_gemv(const float* x, const uint8_t* qw, const float* sc, const float* zr, float* y, long T, long K, long N,
             long g, long chunk, int dynamic) {
    const long kb = K / 2, G = K / g, gb = g / 2;
    float* xe = malloc(sizeof(float) * (size_t)(2 * T * kb + T * (G + 1) + 1));
    float* xo = xe + T * kb;
    float* xs = xo + T * kb; /* per token, per group: sum of x over the group's full-vector part */
    for (long t = 0; t < T; ++t) {
        for (long j = 0; j < kb; ++j) { xe[t * kb + j] = x[t * K + 2 * j]; xo[t * kb + j] = x[t * K + 2 * j + 1]; }
        for (long gi = 0; gi < G; ++gi) {
            float s = 0.f;
            const long j0 = gi * gb, jv = j0 + (gb / 16) * 16; /* the tail part is exact in "tail" */
            for (long j = j0; j < jv; ++j) s += xe[t * kb + j] + xo[t * kb + j];
            xs[t * (G + 1) + gi] = s;
        }
    }
    const long nblocks = (N + NB - 1) / NB;
    if (dynamic) {
#pragma omp parallel for schedule(dynamic, chunk)
        for (long b = 0; b < nblocks; ++b) rows(xe, xo, xs, qw, sc, zr, y, T, K, N, g, b * NB);
    } else {
#pragma omp parallel for schedule(static, chunk)
        for (long b = 0; b < nblocks; ++b) rows(xe, xo, xs, qw, sc, zr, y, T, K, N, g, b * NB);
    }
    free(xe);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long", "long", "int"]
_LIB = load_library(_SRC, functions={"w4_gemv": (None, _ARGS)})
_CHUNK, _DYNAMIC = @CHUNK@, @DYNAMIC@


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, group_size: int):
        super().__init__()
        self.group_size = group_size
        groups = in_features // group_size
        self.register_buffer("qweight", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
        self.register_buffer("scales", torch.zeros(out_features, groups))
        self.register_buffer("zeros", torch.zeros(out_features, groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        qw = self.qweight.contiguous()
        sc = self.scales.contiguous()
        zr = self.zeros.contiguous()
        t, k = x.shape
        n = qw.shape[0]
        y = torch.empty((t, n), dtype=x.dtype)
        if t and n:
            _LIB.w4_gemv(x.data_ptr(), qw.data_ptr(), sc.data_ptr(), zr.data_ptr(), y.data_ptr(), t, k, n,
                         self.group_size, _CHUNK, _DYNAMIC)
        return y
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"NB": config["nb"], "TB": config["tb"], "FACTORED": int(config["algo"] == "factored"),
                      "LUT": int(config["unpack"] == "lut")})  # fmt: skip
    body = fill(
        _PY, {"C_SOURCE": c_src, "CHUNK": config["chunk"], "DYNAMIC": int(config["schedule"] == "dynamic")}
    )
    return (
        header("w4a16_gemv", config, "W4A16 GEMV: int4 weights dequantized in registers (C/OpenMP).") + body
    )
