"""LayerNorm template: per-row mean/variance then an affine normalize pass, rows over OpenMP threads.

``algo``: ``twopass`` (sum, then sum of squared deviations from the mean: three reads of a row that
sits in cache) or ``shifted`` (one pass accumulating x - x[0] and its square, numerically safe
because the shift removes the row offset). ``vec`` x ``unroll`` independent accumulator chains,
``acc`` the accumulator type, ``rows_block``/``schedule`` the OpenMP split (runtime parameters).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "layernorm"

SPACE: dict[str, list[Any]] = {
    "vec": [1, 4, 8, 16, 32],
    "unroll": [1, 2, 4],
    "acc": ["float", "double"],
    "algo": ["twopass", "shifted"],
    "rows_block": [1, 8, 64],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    # two accumulators per lane for "shifted": keep live values within a register file
    live = config["vec"] * config["unroll"] * (2 if config["algo"] == "shifted" else 1)
    return bool(live <= 64)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Lanes of one or two SIMD registers, both algorithms; statically split rows."""
    lanes = hw.simd_floats
    out = []
    for vec in sorted({lanes, min(2 * lanes, 32)}):
        for unroll in (1, 2, 4):
            for acc in ("float", "double"):
                for algo in ("twopass", "shifted"):
                    for rows_block in (1, 8):
                        cfg = dict(vec=vec, unroll=unroll, acc=acc, algo=algo, rows_block=rows_block,
                                   schedule="static")  # fmt: skip
                        if constraints(cfg):
                            out.append(cfg)
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    passes = 3.0 if config["algo"] == "twopass" else 2.0
    return {"chains_per_simd": config["vec"] * config["unroll"] / hw.simd_floats, "row_passes": passes}


_C = r"""
#include <math.h>
#define VEC @VEC@
#define UNR @UNROLL@
#define SHIFTED @SHIFTED@
typedef @ACC@ acc_t;

static inline acc_t sum_lanes(acc_t a[UNR][VEC]) {
    acc_t s = 0;
    for (int u = 0; u < UNR; ++u)
        for (int l = 0; l < VEC; ++l) s += a[u][l];
    return s;
}

static inline void ln_row(const float* restrict x, const float* restrict w, const float* restrict b,
                          float* restrict y, long n, float eps) {
    acc_t s1[UNR][VEC], s2[UNR][VEC];
    for (int u = 0; u < UNR; ++u)
        for (int l = 0; l < VEC; ++l) { s1[u][l] = 0; s2[u][l] = 0; }
    double mean, var;
#if SHIFTED
    const acc_t x0 = (acc_t)x[0];
    long i = 0;
    for (; i + VEC * UNR <= n; i += VEC * UNR)
        for (int u = 0; u < UNR; ++u)
            for (int l = 0; l < VEC; ++l) {
                acc_t d = (acc_t)x[i + u * VEC + l] - x0;
                s1[u][l] += d;
                s2[u][l] += d * d;
            }
    acc_t t1 = sum_lanes(s1), t2 = sum_lanes(s2);
    for (; i < n; ++i) { acc_t d = (acc_t)x[i] - x0; t1 += d; t2 += d * d; }
    double m1 = (double)t1 / (double)n;
    mean = (double)x0 + m1;
    var = (double)t2 / (double)n - m1 * m1;
    if (var < 0) var = 0;
#else
    long i = 0;
    for (; i + VEC * UNR <= n; i += VEC * UNR)
        for (int u = 0; u < UNR; ++u)
            for (int l = 0; l < VEC; ++l) s1[u][l] += (acc_t)x[i + u * VEC + l];
    acc_t t1 = sum_lanes(s1);
    for (; i < n; ++i) t1 += (acc_t)x[i];
    mean = (double)t1 / (double)n;
    const acc_t mu = (acc_t)mean;
    i = 0;
    for (; i + VEC * UNR <= n; i += VEC * UNR)
        for (int u = 0; u < UNR; ++u)
            for (int l = 0; l < VEC; ++l) {
                acc_t d = (acc_t)x[i + u * VEC + l] - mu;
                s2[u][l] += d * d;
            }
    acc_t t2 = sum_lanes(s2);
    for (; i < n; ++i) { acc_t d = (acc_t)x[i] - mu; t2 += d * d; }
    var = (double)t2 / (double)n;
#endif
    const float inv = (float)(1.0 / sqrt(var + (double)eps));
    const float fm = (float)mean;
#pragma omp simd
    for (long j = 0; j < n; ++j) y[j] = (x[j] - fm) * inv * w[j] + b[j];
}

void ln_static(const float* x, const float* w, const float* b, float* y, long rows, long n, float eps, long chunk) {
#pragma omp parallel for schedule(static, chunk)
    for (long r = 0; r < rows; ++r) ln_row(x + r * n, w, b, y + r * n, n, eps);
}

void ln_dynamic(const float* x, const float* w, const float* b, float* y, long rows, long n, float eps, long chunk) {
#pragma omp parallel for schedule(dynamic, chunk)
    for (long r = 0; r < rows; ++r) ln_row(x + r * n, w, b, y + r * n, n, eps);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "ptr", "long", "long", "float", "long"]
_LIB = load_library(_SRC, functions={"ln_static": (None, _ARGS), "ln_dynamic": (None, _ARGS)})
_KERNEL = _LIB.ln_@SCHEDULE@
_ROWS_BLOCK = @ROWS_BLOCK@


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.norm.weight.detach().contiguous()
        b = self.norm.bias.detach().contiguous()
        y = torch.empty_like(x)
        n = x.shape[-1]
        rows = x.numel() // n if n else 0
        if rows:
            _KERNEL(x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(), rows, n, self.norm.eps, _ROWS_BLOCK)
        return y
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"VEC": config["vec"], "UNROLL": config["unroll"], "ACC": config["acc"],
                      "SHIFTED": int(config["algo"] == "shifted")})  # fmt: skip
    body = fill(_PY, {"C_SOURCE": c_src, "SCHEDULE": config["schedule"], "ROWS_BLOCK": config["rows_block"]})
    return header("layernorm", config, "LayerNorm: per-row statistics + affine pass (C/OpenMP).") + body
