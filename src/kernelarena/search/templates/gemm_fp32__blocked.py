"""Cache-blocked fp32 GEMM without packing: the simple alternative to the packed BLIS template.

Three loops of cache blocks (``tm`` x ``tk`` of A, ``tk`` x ``tn`` of B, the block of C they update)
in one of two orders, with an i-k-j inner loop whose j loop gcc vectorizes; OpenMP splits the M
blocks. No packing means no copy overhead on small or skinny shapes, but strided panel reads on
large ones; giving search both templates lets it choose per shape (template choice is part of the
space). All parameters are runtime arguments, so the whole space is one compiled library.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "gemm_fp32"

SPACE: dict[str, list[Any]] = {
    "tm": [4, 8, 16, 32, 64],
    "tn": [64, 128, 256, 512],
    "tk": [32, 64, 128, 256],
    "order": ["kn", "nk"],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    # the B block (tk x tn floats) beyond 512 KiB cannot sit in any L2 here
    return bool(config["tk"] * config["tn"] * 4 <= 512 << 10)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """B blocks that fit in half of L2, A row strips (tm x tk) within L1, both loop orders."""
    out = []
    for tm in (8, 16, 32):
        for tn in SPACE["tn"]:
            for tk in SPACE["tk"]:
                if (
                    tk * tn * 4 > hw.l2_bytes // 2
                    or tm * tk * 4 > hw.l1d_bytes // 2
                    or tk * tn * 4 < hw.l2_bytes // 16
                ):
                    continue
                for order in ("kn", "nk"):
                    cfg = dict(tm=tm, tn=tn, tk=tk, order=order, schedule="static")
                    if constraints(cfg):
                        out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {
        "b_block_over_l2": config["tk"] * config["tn"] * 4 / hw.l2_bytes,
        "a_block_over_l1": config["tm"] * config["tk"] * 4 / hw.l1d_bytes,
    }


_C = r"""
#include <string.h>

static void tile(const float* restrict A, const float* restrict B, float* restrict C, long K, long N, long i0,
                 long i1, long k0, long k1, long j0, long j1) {
    for (long i = i0; i < i1; ++i) {
        float* restrict c = C + i * N;
        for (long k = k0; k < k1; ++k) {
            const float a = A[i * K + k];
            const float* restrict b = B + k * N;
#pragma omp simd
            for (long j = j0; j < j1; ++j) c[j] += a * b[j];
        }
    }
}

static void mblock(const float* A, const float* B, float* C, long M, long K, long N, long i0, long TM, long TN,
                   long TK, int nk) {
    const long i1 = i0 + TM < M ? i0 + TM : M;
    memset(C + i0 * N, 0, sizeof(float) * (size_t)((i1 - i0) * N));
    if (nk) {
        for (long j0 = 0; j0 < N; j0 += TN)
            for (long k0 = 0; k0 < K; k0 += TK)
                tile(A, B, C, K, N, i0, i1, k0, k0 + TK < K ? k0 + TK : K, j0, j0 + TN < N ? j0 + TN : N);
    } else {
        for (long k0 = 0; k0 < K; k0 += TK)
            for (long j0 = 0; j0 < N; j0 += TN)
                tile(A, B, C, K, N, i0, i1, k0, k0 + TK < K ? k0 + TK : K, j0, j0 + TN < N ? j0 + TN : N);
    }
}

void gemm_blocked(const float* A, const float* B, float* C, long M, long K, long N, long TM, long TN, long TK, int nk,
                  int dynamic) {
    if (dynamic) {
#pragma omp parallel for schedule(dynamic, 1)
        for (long i0 = 0; i0 < M; i0 += TM) mblock(A, B, C, M, K, N, i0, TM, TN, TK, nk);
    } else {
#pragma omp parallel for schedule(static)
        for (long i0 = 0; i0 < M; i0 += TM) mblock(A, B, C, M, K, N, i0, TM, TN, TK, nk);
    }
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "long", "long", "long", "long", "long", "long", "int", "int"]
_LIB = load_library(_SRC, functions={"gemm_blocked": (None, _ARGS)})
_TM, _TN, _TK, _NK, _DYNAMIC = @TM@, @TN@, @TK@, @NK@, @DYNAMIC@


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a = a.contiguous()
        b = b.contiguous()
        m, k = a.shape
        n = b.shape[1]
        c = torch.empty((m, n), dtype=a.dtype)
        if m and n:
            _LIB.gemm_blocked(a.data_ptr(), b.data_ptr(), c.data_ptr(), m, k, n, _TM, _TN, _TK, _NK, _DYNAMIC)
        return c
'''


def render(config: dict[str, Any]) -> str:
    body = fill(
        _PY,
        {
            "C_SOURCE": _C,
            "TM": config["tm"],
            "TN": config["tn"],
            "TK": config["tk"],
            "NK": int(config["order"] == "nk"),
            "DYNAMIC": int(config["schedule"] == "dynamic"),
        },
    )
    return header("gemm_fp32__blocked", config, "Cache-blocked fp32 GEMM without packing (C/OpenMP).") + body
