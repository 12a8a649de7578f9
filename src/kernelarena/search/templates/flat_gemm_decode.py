"""Flat GEMM (decode) template: ``y = x @ W.T`` for a handful of tokens, streaming W once.

Each OpenMP task takes ``nb`` rows of W and computes their dot products with ``mb`` tokens at a
time, ``vec`` lanes per accumulator (``mb * nb * vec`` partial sums live in registers), over K in
tiles of ``kt`` (0 = all of K) so that the W rows of one block stay in L1 while all token blocks
pass over them. ``chunk``: W-row blocks per OpenMP scheduling unit.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "flat_gemm_decode"

SPACE: dict[str, list[Any]] = {
    "nb": [1, 2, 4, 8],
    "mb": [1, 2, 4, 8, 16],
    "vec": [8, 16, 32],
    "kt": [0, 256, 1024],
    "chunk": [1, 16, 128],
}


def constraints(config: dict[str, Any]) -> bool:
    # partial sums beyond 512 floats (32 AVX-512 registers) always spill
    return bool(config["mb"] * config["nb"] * config["vec"] <= 512)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """One or two SIMD registers per partial sum; token x row blocks that use 1/4..3/4 of the
    register file; K tiles whose nb W rows fit in L1 (or all of K); small scheduling chunks."""
    # (a first version asked for half of L1 and lost the best tile, nb=8 x kt=1024 = 32 KiB of a
    # 48 KiB L1, to it: the x rows are only mb x kt floats, so W may take most of L1)
    lanes = hw.simd_floats
    regs = 32 if hw.simd_bits >= 512 else 16
    out = []
    for vec in sorted({lanes, 2 * lanes} & set(SPACE["vec"])) or [SPACE["vec"][0]]:
        for mb in SPACE["mb"]:
            for nb in SPACE["nb"]:
                acc_regs = mb * nb * vec // lanes
                if not (regs // 4 <= acc_regs <= 3 * regs // 4):
                    continue
                kts = [kt for kt in SPACE["kt"] if kt and nb * kt * 4 <= 3 * hw.l1d_bytes // 4] + [0]
                for kt in kts[-2:]:
                    for chunk in (1, 16):
                        cfg = dict(nb=nb, mb=mb, vec=vec, kt=kt, chunk=chunk)
                        if constraints(cfg):
                            out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    kt = config["kt"] or 4096
    return {
        "acc_regs": config["mb"] * config["nb"] * config["vec"] / hw.simd_floats,
        "w_tile_over_l1": config["nb"] * kt * 4 / hw.l1d_bytes,
    }


_C = r"""
#define NB @NB@
#define MB @MB@
#define VEC @VEC@

/* explicit GCC vector type: VEC lanes per partial sum, unaligned loads through memcpy */
typedef float vf __attribute__((vector_size(VEC * sizeof(float))));
static inline vf ld(const float* p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }

static inline void tile(const float* const* xr, const float* const* wr, long k0, long k1, float out[MB][NB]) {
    vf acc[MB][NB];
    for (int t = 0; t < MB; ++t)
        for (int r = 0; r < NB; ++r) acc[t][r] = (vf){0};
    long k = k0;
    for (; k + VEC <= k1; k += VEC) {
        vf xv[MB];
        for (int t = 0; t < MB; ++t) xv[t] = ld(xr[t] + k);
        for (int r = 0; r < NB; ++r) {
            const vf wv = ld(wr[r] + k);
            for (int t = 0; t < MB; ++t) acc[t][r] += xv[t] * wv;
        }
    }
    for (int t = 0; t < MB; ++t)
        for (int r = 0; r < NB; ++r) {
            float s = 0.f;
            for (int l = 0; l < VEC; ++l) s += acc[t][r][l];
            for (long kk = k; kk < k1; ++kk) s += xr[t][kk] * wr[r][kk];
            out[t][r] = s;
        }
}

void flat_gemm(const float* x, const float* W, float* y, long M, long K, long N, long KT, long chunk) {
    if (KT <= 0 || KT > K) KT = K;
    const long nblocks = (N + NB - 1) / NB;
#pragma omp parallel for schedule(static, chunk)
    for (long b = 0; b < nblocks; ++b) {
        const long n0 = b * NB;
        const long nn = N - n0 < NB ? N - n0 : NB;
        const float* wr[NB];
        for (int r = 0; r < NB; ++r) wr[r] = W + (n0 + (r < nn ? r : nn - 1)) * K;
        for (long m = 0; m < M; ++m)
            for (long r = 0; r < nn; ++r) y[m * N + n0 + r] = 0.f;
        for (long k0 = 0; k0 < K; k0 += KT) {
            const long k1 = K - k0 < KT ? K : k0 + KT;
            for (long m0 = 0; m0 < M; m0 += MB) {
                const long mb = M - m0 < MB ? M - m0 : MB;
                const float* xr[MB];
                for (int t = 0; t < MB; ++t) xr[t] = x + (m0 + (t < mb ? t : mb - 1)) * K;
                float out[MB][NB];
                tile(xr, wr, k0, k1, out);
                for (long t = 0; t < mb; ++t)
                    for (long r = 0; r < nn; ++r) y[(m0 + t) * N + n0 + r] += out[t][r];
            }
        }
    }
}
"""

_PY = r'''
import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_LIB = load_library(_SRC, functions={"flat_gemm": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "long", "long"])})
_KT, _CHUNK = @KT@, @CHUNK@


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        m, k = x.shape
        n = w.shape[0]
        y = torch.empty((m, n), dtype=x.dtype)
        if m and n:
            _LIB.flat_gemm(x.data_ptr(), w.data_ptr(), y.data_ptr(), m, k, n, _KT, _CHUNK)
        return y
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"NB": config["nb"], "MB": config["mb"], "VEC": config["vec"]})
    body = fill(_PY, {"C_SOURCE": c_src, "KT": config["kt"], "CHUNK": config["chunk"]})
    return (
        header("flat_gemm_decode", config, "Flat decode GEMM: W streamed once, register-blocked dots.") + body
    )
