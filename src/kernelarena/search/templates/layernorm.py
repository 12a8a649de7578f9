"""LayerNorm template: per-row mean/variance then an affine normalize pass, rows over OpenMP threads.

``algo``: ``twopass`` (sum, then sum of squared deviations from the mean: three reads of a row that
sits in cache) or ``shifted`` (one pass accumulating x - x[0] and its square, numerically safe
because the shift removes the row offset). ``vec`` x ``unroll`` independent accumulator chains,
``acc`` the accumulator type, ``rows_block``/``schedule`` the OpenMP split (``rows_block`` 0: one
contiguous share per thread). The row machinery (accumulator chains, the streaming output pass for
outputs of 8 MiB and more) is ``karena/rownorm.h``; the file builds with ``SIMD_FLAGS``, so
``KARENA_CPU_ISA`` forces the AVX2 or generic path. The built-in solution is this template rendered
with the best stored ``karena tune`` config for the machine (``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header, norm_lite, norm_space, norm_valid, omp_rows

TASK = "layernorm"

SPACE: dict[str, list[Any]] = norm_space(algo=["twopass", "shifted"])

DEFAULT: dict[str, Any] = {"vec": 16, "unroll": 2, "acc": "float", "algo": "twopass", "rows_block": 0,
                           "schedule": "static"}  # fmt: skip


def constraints(config: dict[str, Any]) -> bool:
    # two accumulators per lane for "shifted"
    return norm_valid(config, 2 if config["algo"] == "shifted" else 1)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Lanes of one or two SIMD registers, both algorithms; rows split statically (one share per
    thread, or blocks of 8)."""
    return norm_lite(hw.simd_floats, constraints, algo=SPACE["algo"])


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    passes = 3.0 if config["algo"] == "twopass" else 2.0
    return {"chains_per_simd": config["vec"] * config["unroll"] / hw.simd_floats, "row_passes": passes}


_C = r"""
#define KR_VEC @VEC@
#define KR_UNR @UNROLL@
#define KR_ACC @ACC@
#define SHIFTED @SHIFTED@
#include "karena/rownorm.h"

static inline void ln_row(const float* restrict x, const float* restrict w, const float* restrict b,
                          float* restrict y, long n, float eps, int stream) {
    kr_acc s1[KR_UNR][KR_VEC], s2[KR_UNR][KR_VEC];
    kr_zero(s1);
    kr_zero(s2);
    double mean, var;
    long i = 0;
#if SHIFTED
    const kr_acc x0 = (kr_acc)x[0];
    KR_BLOCKS(i, n) {
        const kr_acc d = (kr_acc)x[j] - x0;
        s1[u][l] += d;
        s2[u][l] += d * d;
    }
    kr_acc t1 = kr_sum(s1), t2 = kr_sum(s2);
    for (; i < n; ++i) { kr_acc d = (kr_acc)x[i] - x0; t1 += d; t2 += d * d; }
    double m1 = (double)t1 / (double)n;
    mean = (double)x0 + m1;
    var = (double)t2 / (double)n - m1 * m1;
    if (var < 0) var = 0;
#else
    KR_BLOCKS(i, n) s1[u][l] += (kr_acc)x[j];
    kr_acc t1 = kr_sum(s1);
    for (; i < n; ++i) t1 += (kr_acc)x[i];
    mean = (double)t1 / (double)n;
    const kr_acc mu = (kr_acc)mean;
    i = 0;
    KR_BLOCKS(i, n) {
        const kr_acc d = (kr_acc)x[j] - mu;
        s2[u][l] += d * d;
    }
    kr_acc t2 = kr_sum(s2);
    for (; i < n; ++i) { kr_acc d = (kr_acc)x[i] - mu; t2 += d * d; }
    var = (double)t2 / (double)n;
#endif
    const float inv = (float)(1.0 / sqrt(var + (double)eps));
    const float fm = (float)mean;
    const kv_f vinv = kv_set1(inv), vm = kv_set1(fm);
#define OUT1(j) y[j] = (x[j] - fm) * inv * w[j] + b[j];
#define OUTV(j) kv_stream(y + (j), (kv_load(x + (j)) - vm) * vinv * kv_load(w + (j)) + kv_load(b + (j)));
    KR_OUT_PASS(y, n, stream);
}
@ENTRY@"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""@C_SOURCE@"""

_LIB = load_library(
    _SRC, flags=SIMD_FLAGS, functions={"ln_rows": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "float"])}
)


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
            _LIB.ln_rows(x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(), rows, n, self.norm.eps)
        return y
'''


def render(config: dict[str, Any]) -> str:
    entry = omp_rows(
        "ln_rows(const float* x, const float* w, const float* b, float* y, long rows, long n, float eps)",
        "ln_row(x + r * n, w, b, y + r * n, n, eps, stream)",
        config,
    )
    c_src = fill(_C, {"VEC": config["vec"], "UNROLL": config["unroll"], "ACC": config["acc"],
                      "SHIFTED": int(config["algo"] == "shifted"), "ENTRY": entry})  # fmt: skip
    body = fill(_PY, {"C_SOURCE": c_src})
    return header("layernorm", config, "LayerNorm: per-row statistics + affine pass (C/OpenMP).") + body
