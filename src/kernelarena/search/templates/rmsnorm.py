"""RMSNorm template: one read-reduce pass and one scale pass per row, rows spread over OpenMP threads.

Parameters: ``vec`` lanes x ``unroll`` independent accumulator sets for the sum of squares (enough
independent chains to hide FMA latency and let gcc vectorize without -ffast-math), ``acc`` the
accumulator type, ``prefetch`` a software-prefetch distance in floats (0 = none), ``rows_block`` and
``schedule`` the OpenMP work split. Compile-time: vec, unroll, acc, prefetch; the rest are runtime.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "rmsnorm"

SPACE: dict[str, list[Any]] = {
    "vec": [1, 4, 8, 16, 32],
    "unroll": [1, 2, 4],
    "acc": ["float", "double"],
    "prefetch": [0, 512],
    "rows_block": [1, 8, 64],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    # more than 64 live accumulators spill registers on every ISA here
    return bool(config["vec"] * config["unroll"] <= 64)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """One or two SIMD registers of lanes, 1-4 chains, both accumulator types, rows split in static
    blocks that keep every core busy, and software prefetch on or off (whether the hardware
    prefetcher keeps up with two streams is machine-specific; on the VM this was written on, it
    did not: prefetch=512 won every top spot of the full space)."""
    lanes = hw.simd_floats
    out = []
    for vec in sorted({lanes, min(2 * lanes, 32)}):
        for unroll in (1, 2, 4):
            if vec * unroll > 64:
                continue
            for acc in ("float", "double"):
                for prefetch in SPACE["prefetch"]:
                    for rows_block in (1, 8):
                        out.append(dict(vec=vec, unroll=unroll, acc=acc, prefetch=prefetch, rows_block=rows_block,
                                        schedule="static"))  # fmt: skip
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {
        "chains_per_simd": config["vec"] * config["unroll"] / hw.simd_floats,
        "lanes_per_simd": config["vec"] / hw.simd_floats,
    }


_C = r"""
#include <math.h>
#define VEC @VEC@
#define UNR @UNROLL@
#define PF @PREFETCH@
typedef @ACC@ acc_t;

static inline void rms_row(const float* restrict x, const float* restrict w, float* restrict y, long n, float eps) {
    acc_t acc[UNR][VEC];
    for (int u = 0; u < UNR; ++u)
        for (int l = 0; l < VEC; ++l) acc[u][l] = 0;
    long i = 0;
    for (; i + VEC * UNR <= n; i += VEC * UNR) {
#if PF > 0
        __builtin_prefetch(x + i + PF);
#endif
        for (int u = 0; u < UNR; ++u)
            for (int l = 0; l < VEC; ++l) {
                acc_t v = (acc_t)x[i + u * VEC + l];
                acc[u][l] += v * v;
            }
    }
    acc_t s = 0;
    for (; i < n; ++i) { acc_t v = (acc_t)x[i]; s += v * v; }
    for (int u = 0; u < UNR; ++u)
        for (int l = 0; l < VEC; ++l) s += acc[u][l];
    const float inv = (float)(1.0 / sqrt((double)s / (double)n + (double)eps));
#pragma omp simd
    for (long j = 0; j < n; ++j) y[j] = (x[j] * inv) * w[j];
}

void rms_static(const float* x, const float* w, float* y, long rows, long n, float eps, long chunk) {
#pragma omp parallel for schedule(static, chunk)
    for (long r = 0; r < rows; ++r) rms_row(x + r * n, w, y + r * n, n, eps);
}

void rms_dynamic(const float* x, const float* w, float* y, long rows, long n, float eps, long chunk) {
#pragma omp parallel for schedule(dynamic, chunk)
    for (long r = 0; r < rows; ++r) rms_row(x + r * n, w, y + r * n, n, eps);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "long", "long", "float", "long"]
_LIB = load_library(_SRC, functions={"rms_static": (None, _ARGS), "rms_dynamic": (None, _ARGS)})
_KERNEL = _LIB.rms_@SCHEDULE@
_ROWS_BLOCK = @ROWS_BLOCK@


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        y = torch.empty_like(x)
        n = x.shape[-1]
        rows = x.numel() // n if n else 0
        if rows:
            _KERNEL(x.data_ptr(), w.data_ptr(), y.data_ptr(), rows, n, self.eps, _ROWS_BLOCK)
        return y
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"VEC": config["vec"], "UNROLL": config["unroll"], "ACC": config["acc"],
                      "PREFETCH": config["prefetch"]})  # fmt: skip
    body = fill(_PY, {"C_SOURCE": c_src, "SCHEDULE": config["schedule"], "ROWS_BLOCK": config["rows_block"]})
    return header("rmsnorm", config, "RMSNorm: fused reduce + scale per row (C/OpenMP).") + body
