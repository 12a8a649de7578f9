"""Fused residual add + RMSNorm template: ``h = x + residual`` and ``rmsnorm(h) * weight`` per row.

``h_mode``: ``reload`` writes h in the reduction pass and reads it back for the scale pass (from
cache), streaming only y; ``recompute`` only reduces in the first pass and adds x + residual again
in the output pass, which writes both h and y (both streamed when the outputs exceed the caches and
the two rows share their alignment): two reads and two writes of DRAM per element. ``vec`` x
``unroll`` accumulator chains, ``acc`` type, and the OpenMP split (``rows_block``, ``schedule``;
``rows_block`` 0: one contiguous share per thread). The row machinery is ``karena/rownorm.h``; the
file builds with ``SIMD_FLAGS``, so ``KARENA_CPU_ISA`` forces the AVX2 or generic path. The built-in
solution is this template rendered with the best stored ``karena tune`` config for the machine
(``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header, norm_lite, norm_space, norm_valid, omp_rows

TASK = "add_rmsnorm"

SPACE: dict[str, list[Any]] = norm_space(h_mode=["reload", "recompute"])

DEFAULT: dict[str, Any] = {"vec": 16, "unroll": 2, "acc": "float", "h_mode": "recompute", "rows_block": 0,
                           "schedule": "static"}  # fmt: skip


def constraints(config: dict[str, Any]) -> bool:
    return norm_valid(config)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """SIMD-width lanes (1-2 registers), 1-4 chains, both h modes, rows split statically (one share
    per thread, or blocks of 8)."""
    return norm_lite(hw.simd_floats, constraints, h_mode=SPACE["h_mode"])


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {"chains_per_simd": config["vec"] * config["unroll"] / hw.simd_floats}


_C = r"""
#define KR_VEC @VEC@
#define KR_UNR @UNROLL@
#define KR_ACC @ACC@
#define RECOMPUTE @RECOMPUTE@
#include "karena/rownorm.h"

static inline void row(const float* restrict x, const float* restrict res, const float* restrict w,
                       float* restrict y, float* restrict h, long n, float eps, int stream) {
    kr_acc acc[KR_UNR][KR_VEC];
    kr_zero(acc);
    long i = 0;
#if RECOMPUTE
    KR_BLOCKS(i, n) {
        const kr_acc hv = (kr_acc)(x[j] + res[j]);
        acc[u][l] += hv * hv;
    }
    kr_acc s = 0;
    for (; i < n; ++i) { kr_acc hv = (kr_acc)(x[i] + res[i]); s += hv * hv; }
#else
    KR_BLOCKS(i, n) {
        const float hv = x[j] + res[j];
        h[j] = hv;
        acc[u][l] += (kr_acc)hv * (kr_acc)hv;
    }
    kr_acc s = 0;
    for (; i < n; ++i) { float hv = x[i] + res[i]; h[i] = hv; s += (kr_acc)hv * (kr_acc)hv; }
#endif
    s += kr_sum(acc);
    const float inv = (float)(1.0 / sqrt((double)s / (double)n + (double)eps));
    const kv_f vinv = kv_set1(inv);
#if RECOMPUTE
    /* h and y are streamed together, so only when their rows share an alignment */
    stream = stream && (((uintptr_t)h ^ (uintptr_t)y) & (KV_VW * 4 - 1)) == 0;
#define OUT1(j) { const float hv = x[j] + res[j]; h[j] = hv; y[j] = (hv * inv) * w[j]; }
#define OUTV(j) { const kv_f hv = kv_load(x + (j)) + kv_load(res + (j)); \
                  kv_stream(h + (j), hv); kv_stream(y + (j), hv * vinv * kv_load(w + (j))); }
#else
#define OUT1(j) y[j] = (h[j] * inv) * w[j];
#define OUTV(j) kv_stream(y + (j), kv_load(h + (j)) * vinv * kv_load(w + (j)));
#endif
    KR_OUT_PASS(y, n, stream);
}
@ENTRY@"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "float"]
_LIB = load_library(_SRC, flags=SIMD_FLAGS, functions={"arms_rows": (None, _ARGS)})


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        r = residual.contiguous()
        w = self.weight.detach().contiguous()
        y = torch.empty_like(x)
        h = torch.empty_like(x)
        n = x.shape[-1]
        rows = x.numel() // n if n else 0
        if rows:
            _LIB.arms_rows(x.data_ptr(), r.data_ptr(), w.data_ptr(), y.data_ptr(), h.data_ptr(), rows, n, self.eps)
        return y, h
'''


def render(config: dict[str, Any]) -> str:
    entry = omp_rows(
        "arms_rows(const float* x, const float* res, const float* w, float* y, float* h, long rows, long n, float eps)",
        "row(x + r * n, res + r * n, w, y + r * n, h + r * n, n, eps, stream)",
        config,
    )
    c_src = fill(_C, {"VEC": config["vec"], "UNROLL": config["unroll"], "ACC": config["acc"],
                      "RECOMPUTE": int(config["h_mode"] == "recompute"), "ENTRY": entry})  # fmt: skip
    body = fill(_PY, {"C_SOURCE": c_src})
    return header("add_rmsnorm", config, "Residual add + RMSNorm, fused (C/OpenMP).") + body
