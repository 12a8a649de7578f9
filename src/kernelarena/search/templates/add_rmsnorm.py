"""Fused residual add + RMSNorm template: ``h = x + residual`` and ``rmsnorm(h) * weight`` per row.

``h_mode``: ``reload`` writes h in the reduction pass and reads it back for the scale pass (two
reads of the inputs avoided, one extra read of h from cache) or ``recompute`` (the scale pass adds
x + residual again, never reading h). ``vec`` x ``unroll`` accumulator chains, ``acc`` type, and the
OpenMP split (``rows_block``, ``schedule``; runtime parameters).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "add_rmsnorm"

SPACE: dict[str, list[Any]] = {
    "vec": [1, 4, 8, 16, 32],
    "unroll": [1, 2, 4],
    "acc": ["float", "double"],
    "h_mode": ["reload", "recompute"],
    "rows_block": [1, 8, 64],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    return bool(config["vec"] * config["unroll"] <= 64)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """SIMD-width lanes (1-2 registers), 1-4 chains, both h modes, static row blocks."""
    lanes = hw.simd_floats
    out = []
    for vec in sorted({lanes, min(2 * lanes, 32)}):
        for unroll in (1, 2, 4):
            for acc in ("float", "double"):
                for h_mode in ("reload", "recompute"):
                    for rows_block in (1, 8):
                        cfg = dict(vec=vec, unroll=unroll, acc=acc, h_mode=h_mode, rows_block=rows_block,
                                   schedule="static")  # fmt: skip
                        if constraints(cfg):
                            out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {"chains_per_simd": config["vec"] * config["unroll"] / hw.simd_floats}


_C = r"""
#include <math.h>
#define VEC @VEC@
#define UNR @UNROLL@
#define RECOMPUTE @RECOMPUTE@
typedef @ACC@ acc_t;

static inline void row(const float* restrict x, const float* restrict res, const float* restrict w,
                       float* restrict y, float* restrict h, long n, float eps) {
    acc_t acc[UNR][VEC];
    for (int u = 0; u < UNR; ++u)
        for (int l = 0; l < VEC; ++l) acc[u][l] = 0;
    long i = 0;
    for (; i + VEC * UNR <= n; i += VEC * UNR)
        for (int u = 0; u < UNR; ++u)
            for (int l = 0; l < VEC; ++l) {
                long j = i + u * VEC + l;
                float hv = x[j] + res[j];
                h[j] = hv;
                acc[u][l] += (acc_t)hv * (acc_t)hv;
            }
    acc_t s = 0;
    for (; i < n; ++i) { float hv = x[i] + res[i]; h[i] = hv; s += (acc_t)hv * (acc_t)hv; }
    for (int u = 0; u < UNR; ++u)
        for (int l = 0; l < VEC; ++l) s += acc[u][l];
    const float inv = (float)(1.0 / sqrt((double)s / (double)n + (double)eps));
#if RECOMPUTE
#pragma omp simd
    for (long j = 0; j < n; ++j) y[j] = ((x[j] + res[j]) * inv) * w[j];
#else
#pragma omp simd
    for (long j = 0; j < n; ++j) y[j] = (h[j] * inv) * w[j];
#endif
}

void arms_static(const float* x, const float* r, const float* w, float* y, float* h, long rows, long n, float eps,
                 long chunk) {
#pragma omp parallel for schedule(static, chunk)
    for (long i = 0; i < rows; ++i) row(x + i * n, r + i * n, w, y + i * n, h + i * n, n, eps);
}

void arms_dynamic(const float* x, const float* r, const float* w, float* y, float* h, long rows, long n, float eps,
                  long chunk) {
#pragma omp parallel for schedule(dynamic, chunk)
    for (long i = 0; i < rows; ++i) row(x + i * n, r + i * n, w, y + i * n, h + i * n, n, eps);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "float", "long"]
_LIB = load_library(_SRC, functions={"arms_static": (None, _ARGS), "arms_dynamic": (None, _ARGS)})
_KERNEL = _LIB.arms_@SCHEDULE@
_ROWS_BLOCK = @ROWS_BLOCK@


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor):
        x = x.contiguous()
        r = residual.contiguous()
        w = self.weight.detach().contiguous()
        y = torch.empty_like(x)
        h = torch.empty_like(x)
        n = x.shape[-1]
        rows = x.numel() // n if n else 0
        if rows:
            _KERNEL(x.data_ptr(), r.data_ptr(), w.data_ptr(), y.data_ptr(), h.data_ptr(), rows, n, self.eps,
                    _ROWS_BLOCK)
        return y, h
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"VEC": config["vec"], "UNROLL": config["unroll"], "ACC": config["acc"],
                      "RECOMPUTE": int(config["h_mode"] == "recompute")})  # fmt: skip
    body = fill(_PY, {"C_SOURCE": c_src, "SCHEDULE": config["schedule"], "ROWS_BLOCK": config["rows_block"]})
    return header("add_rmsnorm", config, "Residual add + RMSNorm, fused (C/OpenMP).") + body
