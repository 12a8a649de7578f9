"""Ternary (BitNet b1.58) matmul template: 2-bit codes decoded in registers, W streamed once.

Activations are de-interleaved once per call into four channel streams (channel ``4j + i`` goes to
stream ``i``), so the i-th bit pair of 16 consecutive weight bytes lines up with one contiguous
activation vector. ``algo``: ``decode`` multiplies by ``code - 1``; ``offset`` multiplies by the
raw code and subtracts ``sum(x)`` once per token (one op fewer per weight). ``unpack``: shift/mask
or a 256-entry table. ``nb`` rows x ``tb`` tokens per register block; OpenMP ``chunk``/``schedule``.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "ternary_matmul"

SPACE: dict[str, list[Any]] = {
    "algo": ["decode", "offset"],
    "unpack": ["shift", "lut"],
    "nb": [1, 2, 4, 8],
    "tb": [1, 2, 4, 8],
    "chunk": [1, 8, 64],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    return bool(config["nb"] * config["tb"] <= 16)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Register blocks using 1/8..1/2 of the vector registers, both algorithms and both unpack
    methods (table gather vs shift+convert is a compiler question, measured rather than assumed),
    static chunks of 8 row blocks."""
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
#define OFFSET @OFFSET@
#define LUT @LUT@

typedef float vf __attribute__((vector_size(64)));
typedef unsigned char vu8 __attribute__((vector_size(16)));
static inline vf ldf(const float* p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline vu8 ldb(const uint8_t* p) { vu8 v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline float hsum(vf v) { float s = 0.f; for (int l = 0; l < 16; ++l) s += v[l]; return s; }

#if LUT
static float lut[256][4];
__attribute__((constructor)) static void init_lut(void) {
    for (int b = 0; b < 256; ++b)
        for (int i = 0; i < 4; ++i) lut[b][i] = (float)((b >> (2 * i)) & 3) - (OFFSET ? 0.f : 1.f);
}
static inline vf code(vu8 b, int i) { vf v; for (int l = 0; l < 16; ++l) v[l] = lut[b[l]][i]; return v; }
#else
static inline vf code(vu8 b, int i) {
    vf c = __builtin_convertvector((vu8)((b >> (unsigned char)(2 * i)) & 3), vf);
    return OFFSET ? c : c - 1.0f;
}
#endif

static void rows(const float* xs4, const float* xsum, const uint8_t* qw, float* y, long T, long K, long N, float scale,
                 long n0) {
    const long kb = K / 4;
    const long nn = N - n0 < NB ? N - n0 : NB;
    const uint8_t* q[NB];
    for (int r = 0; r < NB; ++r) q[r] = qw + (n0 + (r < nn ? r : nn - 1)) * kb;
    for (long t0 = 0; t0 < T; t0 += TB) {
        const long tb = T - t0 < TB ? T - t0 : TB;
        const float* xt[TB];
        for (int t = 0; t < TB; ++t) xt[t] = xs4 + (t0 + (t < tb ? t : tb - 1)) * 4 * kb;
        vf acc[TB][NB];
        float tail[TB][NB];
        for (int t = 0; t < TB; ++t)
            for (int r = 0; r < NB; ++r) { acc[t][r] = (vf){0}; tail[t][r] = 0.f; }
        long j = 0;
        for (; j + 16 <= kb; j += 16)
            for (int i = 0; i < 4; ++i) {
                vf xv[TB];
                for (int t = 0; t < TB; ++t) xv[t] = ldf(xt[t] + i * kb + j);
                for (int r = 0; r < NB; ++r) {
                    const vf w = code(ldb(q[r] + j), i);
                    for (int t = 0; t < TB; ++t) acc[t][r] += w * xv[t];
                }
            }
        for (; j < kb; ++j)
            for (int i = 0; i < 4; ++i)
                for (int r = 0; r < NB; ++r) {
                    const float w = (float)((q[r][j] >> (2 * i)) & 3) - (OFFSET ? 0.f : 1.f);
                    for (int t = 0; t < TB; ++t) tail[t][r] += w * xt[t][i * kb + j];
                }
        for (long t = 0; t < tb; ++t)
            for (long r = 0; r < nn; ++r) {
                float v = hsum(acc[t][r]) + tail[t][r];
                if (OFFSET) v -= xsum[t0 + t];
                y[(t0 + t) * N + n0 + r] = v * scale;
            }
    }
}

void ternary(const float* x, const uint8_t* qw, float* y, long T, long K, long N, float scale, long chunk, int dynamic) {
    const long kb = K / 4;
    float* xs4 = malloc(sizeof(float) * (size_t)(T * K + T + 1));
    float* xsum = xs4 + T * K;
    for (long t = 0; t < T; ++t) {
        float s = 0.f;
        for (long j = 0; j < kb; ++j)
            for (int i = 0; i < 4; ++i) {
                const float v = x[t * K + 4 * j + i];
                xs4[t * K + i * kb + j] = v;
                s += v;
            }
        xsum[t] = s;
    }
    const long nblocks = (N + NB - 1) / NB;
    if (dynamic) {
#pragma omp parallel for schedule(dynamic, chunk)
        for (long b = 0; b < nblocks; ++b) rows(xs4, xsum, qw, y, T, K, N, scale, b * NB);
    } else {
#pragma omp parallel for schedule(static, chunk)
        for (long b = 0; b < nblocks; ++b) rows(xs4, xsum, qw, y, T, K, N, scale, b * NB);
    }
    free(xs4);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "long", "long", "long", "float", "long", "int"]
_LIB = load_library(_SRC, functions={"ternary": (None, _ARGS)})
_CHUNK, _DYNAMIC = @CHUNK@, @DYNAMIC@


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.register_buffer("qweight", torch.zeros(out_features, in_features // 4, dtype=torch.uint8))
        self.register_buffer("weight_scale", torch.tensor([0.02]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        qw = self.qweight.contiguous()
        t, k = x.shape
        n = qw.shape[0]
        y = torch.empty((t, n), dtype=x.dtype)
        if t and n:
            scale = float(self.weight_scale[0])
            _LIB.ternary(x.data_ptr(), qw.data_ptr(), y.data_ptr(), t, k, n, scale, _CHUNK, _DYNAMIC)
        return y
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"NB": config["nb"], "TB": config["tb"], "OFFSET": int(config["algo"] == "offset"),
                      "LUT": int(config["unpack"] == "lut")})  # fmt: skip
    body = fill(
        _PY, {"C_SOURCE": c_src, "CHUNK": config["chunk"], "DYNAMIC": int(config["schedule"] == "dynamic")}
    )
    return header("ternary_matmul", config, "Ternary-weight matmul: 2-bit codes decoded in registers.") + body
