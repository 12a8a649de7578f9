"""RMSNorm template: one read-reduce pass and one scale pass per row, rows spread over OpenMP threads.

Parameters: ``vec`` lanes x ``unroll`` independent accumulator sets for the sum of squares (enough
independent chains to hide FMA latency and let gcc vectorize without -ffast-math), ``acc`` the
accumulator type, ``prefetch`` a software-prefetch distance in floats (0 = none), ``rows_block`` and
``schedule`` the OpenMP split (``rows_block`` 0: one contiguous share per thread). The row machinery
(accumulator chains, the streaming output pass for outputs of 8 MiB and more) is ``karena/rownorm.h``;
the file builds with ``SIMD_FLAGS``, so ``KARENA_CPU_ISA`` forces the AVX2 or generic path. The
built-in solution is this template rendered with the best stored ``karena tune`` config for the
machine (``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header, norm_lite, norm_space, norm_valid, omp_rows

TASK = "rmsnorm"

SPACE: dict[str, list[Any]] = norm_space(prefetch=[0, 512])

DEFAULT: dict[str, Any] = {"vec": 16, "unroll": 2, "acc": "float", "prefetch": 0, "rows_block": 0,
                           "schedule": "static"}  # fmt: skip


def constraints(config: dict[str, Any]) -> bool:
    return norm_valid(config)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """One or two SIMD registers of lanes, 1-4 chains, both accumulator types, rows split statically
    (one share per thread, or blocks of 8) and software prefetch on or off (whether the hardware
    prefetcher keeps up with two streams is machine-specific; on the VM this was written on, it
    did not: prefetch=512 won every top spot of the full space)."""
    return norm_lite(hw.simd_floats, constraints, prefetch=SPACE["prefetch"])


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {
        "chains_per_simd": config["vec"] * config["unroll"] / hw.simd_floats,
        "lanes_per_simd": config["vec"] / hw.simd_floats,
    }


_C = r"""
#define KR_VEC @VEC@
#define KR_UNR @UNROLL@
#define KR_ACC @ACC@
#define PF @PREFETCH@
#if PF > 0
#define KR_BLOCK_START(i) __builtin_prefetch(x + (i) + PF)
#endif
#include "karena/rownorm.h"

static inline void rms_row(const float* restrict x, const float* restrict w, float* restrict y, long n, float eps,
                           int stream) {
    kr_acc acc[KR_UNR][KR_VEC];
    kr_zero(acc);
    long i = 0;
    KR_BLOCKS(i, n) {
        const kr_acc v = (kr_acc)x[j];
        acc[u][l] += v * v;
    }
    kr_acc s = 0;
    for (; i < n; ++i) { kr_acc v = (kr_acc)x[i]; s += v * v; }
    s += kr_sum(acc);
    const float inv = (float)(1.0 / sqrt((double)s / (double)n + (double)eps));
    const kv_f vinv = kv_set1(inv);
#define OUT1(j) y[j] = (x[j] * inv) * w[j];
#define OUTV(j) kv_stream(y + (j), kv_load(x + (j)) * vinv * kv_load(w + (j)));
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
    _SRC, flags=SIMD_FLAGS, functions={"rms_rows": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])}
)


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
            _LIB.rms_rows(x.data_ptr(), w.data_ptr(), y.data_ptr(), rows, n, self.eps)
        return y
'''


def render(config: dict[str, Any]) -> str:
    entry = omp_rows(
        "rms_rows(const float* x, const float* w, float* y, long rows, long n, float eps)",
        "rms_row(x + r * n, w, y + r * n, n, eps, stream)",
        config,
    )
    c_src = fill(_C, {"VEC": config["vec"], "UNROLL": config["unroll"], "ACC": config["acc"],
                      "PREFETCH": config["prefetch"], "ENTRY": entry})  # fmt: skip
    body = fill(_PY, {"C_SOURCE": c_src})
    return header("rmsnorm", config, "RMSNorm: fused reduce + scale per row (C/OpenMP).") + body
