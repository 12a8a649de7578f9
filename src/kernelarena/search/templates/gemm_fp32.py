"""Packed, register-tiled fp32 GEMM template (Goto/BLIS structure), C = A @ B, row-major.

B is packed per K block into NR-wide panels and A per (MC x KC) block into MR-tall panels (zero
padded, so edge tiles need no special arithmetic); an MR x NR micro-kernel keeps its block of C in
registers while streaming both panels. Parameters: register tile ``mr`` x ``nr`` and the k-loop
unroll ``ku`` (compile time), cache blocks ``kc`` (B panel depth: L1) and ``mc`` (A block: L2), and
which loop the OpenMP threads split (``par``: the M blocks, or the NR panels inside one M block).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "gemm_fp32"

SPACE: dict[str, list[Any]] = {
    "mr": [2, 4, 6, 8],
    "nr": [16, 32, 48],
    "ku": [1, 4],
    "kc": [64, 128, 256, 512],
    "mc": [32, 64, 128],
    "par": ["m", "n"],
}


def constraints(config: dict[str, Any]) -> bool:
    # an accumulator tile beyond ~24 AVX-512 registers spills on every target here
    return bool(config["mr"] * config["nr"] <= 320)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Register tiles that fill most of the vector register file (MR x NR/lanes accumulators plus
    one B vector per NR/lanes within 32 - 2 registers), a KC whose B micro-panel (KC x NR floats)
    fits in half of L1, MC whose A block (MC x KC) fits in half of L2, both parallel loops."""
    lanes = hw.simd_floats
    regs = 32 if hw.simd_bits >= 512 else 16
    out = []
    for mr in SPACE["mr"]:
        for nr in SPACE["nr"]:
            vecs = max(1, nr // lanes)
            if mr * vecs + vecs > regs - 2 or mr * vecs < regs // 3:
                continue
            kcs = [kc for kc in SPACE["kc"] if kc * nr * 4 <= hw.l1d_bytes // 2] or [SPACE["kc"][0]]
            for kc in kcs[-2:]:
                mcs = [mc for mc in SPACE["mc"] if mc * kc * 4 <= hw.l2_bytes // 2] or [SPACE["mc"][0]]
                for mc in mcs[-2:]:
                    for par in ("m", "n"):
                        cfg = dict(mr=mr, nr=nr, ku=4, kc=kc, mc=mc, par=par)
                        if constraints(cfg):
                            out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    lanes = hw.simd_floats
    acc_regs = config["mr"] * max(1, config["nr"] // lanes)
    return {
        "acc_regs": float(acc_regs),
        "b_panel_over_l1": config["kc"] * config["nr"] * 4 / hw.l1d_bytes,
        "a_block_over_l2": config["mc"] * config["kc"] * 4 / hw.l2_bytes,
        "flops_per_load": 2.0 * config["mr"] * config["nr"] / (config["mr"] + config["nr"]),
    }


_C = r"""
#include <stdlib.h>
#define MR @MR@
#define NR @NR@

static long rup(long x, long m) { return (x + m - 1) / m * m; }

static void pack_b(const float* restrict B, long ldb, long kc, long n, float* restrict bp, long j0) {
    long nr = n - j0 < NR ? n - j0 : NR;
    float* dst = bp + j0 * kc;
    for (long p = 0; p < kc; ++p) {
        const float* src = B + p * ldb + j0;
        long j = 0;
        for (; j < nr; ++j) dst[p * NR + j] = src[j];
        for (; j < NR; ++j) dst[p * NR + j] = 0.f;
    }
}

static void pack_a(const float* restrict A, long lda, long mc, long kc, float* restrict ap) {
    for (long i0 = 0; i0 < mc; i0 += MR) {
        long mr = mc - i0 < MR ? mc - i0 : MR;
        float* dst = ap + i0 * kc;
        for (long i = 0; i < MR; ++i) {
            if (i < mr) {
                const float* src = A + (i0 + i) * lda;
                for (long p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
            } else {
                for (long p = 0; p < kc; ++p) dst[p * MR + i] = 0.f;
            }
        }
    }
}

/* 16-lane GCC vector type (one AVX-512 register, two AVX2 ones); NR is a multiple of 16 */
typedef float vf __attribute__((vector_size(64)));
#define NV (NR / 16)
static inline vf ld(const float* p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void st(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }

static inline void micro(long kc, const float* restrict ap, const float* restrict bp, float* restrict c, long ldc,
                         long mr, long nr, int accumulate) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] = (vf){0};
#pragma GCC unroll @KU@
    for (long p = 0; p < kc; ++p) {
        vf b[NV];
        for (int v = 0; v < NV; ++v) b[v] = ld(bp + p * NR + 16 * v);
        const float* a = ap + p * MR;
        for (int i = 0; i < MR; ++i) {
            const vf ai = (vf){0} + a[i];
            for (int v = 0; v < NV; ++v) acc[i][v] += ai * b[v];
        }
    }
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; ++i)
            for (int v = 0; v < NV; ++v) {
                float* cp = c + i * ldc + 16 * v;
                st(cp, accumulate ? ld(cp) + acc[i][v] : acc[i][v]);
            }
        return;
    }
    for (long i = 0; i < mr; ++i) {
        float row[NR];
        for (int v = 0; v < NV; ++v) st(row + 16 * v, acc[i][v]);
        float* ci = c + i * ldc;
        if (accumulate)
            for (long j = 0; j < nr; ++j) ci[j] += row[j];
        else
            for (long j = 0; j < nr; ++j) ci[j] = row[j];
    }
}

static void block(const float* A, long K, float* C, long N, long ic, long mc, long pc, long kc, const float* ap,
                  const float* bp, long jr) {
    long nr = N - jr < NR ? N - jr : NR;
    for (long ir = 0; ir < mc; ir += MR) {
        long mr = mc - ir < MR ? mc - ir : MR;
        micro(kc, ap + ir * kc, bp + jr * kc, C + (ic + ir) * N + jr, N, mr, nr, pc > 0);
    }
    (void)A; (void)K;
}

void gemm(const float* A, const float* B, float* C, long M, long K, long N, long KC, long MC, int par_n) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { for (long i = 0; i < M * N; ++i) C[i] = 0.f; return; }
    const long npan = rup(N, NR);
    float* bp = aligned_alloc(64, rup(KC * npan * sizeof(float), 64));
    float* ap_shared = par_n ? aligned_alloc(64, rup(rup(MC, MR) * KC * sizeof(float), 64)) : NULL;
    for (long pc = 0; pc < K; pc += KC) {
        const long kc = K - pc < KC ? K - pc : KC;
#pragma omp parallel for schedule(static)
        for (long j0 = 0; j0 < N; j0 += NR) pack_b(B + pc * N, N, kc, N, bp, j0);
        if (!par_n) {
#pragma omp parallel
            {
                float* ap = aligned_alloc(64, rup(rup(MC, MR) * KC * sizeof(float), 64));
#pragma omp for schedule(dynamic)
                for (long ic = 0; ic < M; ic += MC) {
                    const long mc = M - ic < MC ? M - ic : MC;
                    pack_a(A + ic * K + pc, K, mc, kc, ap);
                    for (long jr = 0; jr < N; jr += NR) block(A, K, C, N, ic, mc, pc, kc, ap, bp, jr);
                }
                free(ap);
            }
        } else {
            for (long ic = 0; ic < M; ic += MC) {
                const long mc = M - ic < MC ? M - ic : MC;
                pack_a(A + ic * K + pc, K, mc, kc, ap_shared);
#pragma omp parallel for schedule(static)
                for (long jr = 0; jr < N; jr += NR) block(A, K, C, N, ic, mc, pc, kc, ap_shared, bp, jr);
            }
        }
    }
    free(bp);
    free(ap_shared);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_LIB = load_library(_SRC, functions={"gemm": (None, ["ptr", "ptr", "ptr", "long", "long", "long", "long", "long", "int"])})
_KC, _MC, _PAR_N = @KC@, @MC@, @PAR_N@


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a = a.contiguous()
        b = b.contiguous()
        m, k = a.shape
        n = b.shape[1]
        c = torch.empty((m, n), dtype=a.dtype)
        _LIB.gemm(a.data_ptr(), b.data_ptr(), c.data_ptr(), m, k, n, _KC, _MC, _PAR_N)
        return c
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"MR": config["mr"], "NR": config["nr"], "KU": config["ku"]})
    body = fill(
        _PY, {"C_SOURCE": c_src, "KC": config["kc"], "MC": config["mc"], "PAR_N": int(config["par"] == "n")}
    )
    return header("gemm_fp32", config, "Packed register-tiled fp32 GEMM (C/OpenMP, BLIS-style).") + body
