"""Packed, register-tiled fp32 GEMM template on the shared core ``karena/gemm.h``, C = A @ B.

The micro-kernel and its register tile come from the header and follow the ISA the file is built
for (12 x 32 with AVX-512, 6 x 16 with AVX2+FMA, 6 x 8 generic). The template tunes what is left to
the machine: the cache blocks ``kc`` (K depth of a packed panel), ``mc`` (rows of A per packed
block) and ``nc`` (columns of B per packed block), and the order of the two register-tile loops
(``rows_outer``: the A micro-panel stays in L1 and B micro-panels stream from L2, or the reverse).
Threads split the columns of C (rows when C is narrow). The built-in solution is this template
rendered with the best stored ``karena tune`` config for the machine (``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.templates._common import (
    GEMM_DEFAULT,
    GEMM_SPACE,
    fill,
    gemm_constraints,
    gemm_features,
    gemm_knobs,
    gemm_lite,
    header,
)

TASK = "gemm_fp32"

SPACE = GEMM_SPACE
DEFAULT = GEMM_DEFAULT
constraints = gemm_constraints
lite_space = gemm_lite
features = gemm_features


_C = r"""
@GEMM_KNOBS@
#include "karena/gemm.h"

/* C[M, N] = A[M, K] @ B[K, N], all row-major */
void gemm_f32(const float* a, const float* b, float* c, long M, long K, long N) {
  const kg_operand A = {a, K, 1, K, NULL, 0, 0};   /* row m, k: a[m * K + k] */
  const kg_operand B = {b, 1, N, K, NULL, 0, 0};   /* row n, k: b[k * N + n] */
  kg_sgemm(M, N, K, &A, &B, c, N, NULL, NULL);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""@C_SOURCE@"""

_LIB = load_library(_SRC, flags=FLAGS, functions={"gemm_f32": (None, ["ptr", "ptr", "ptr", "long", "long", "long"])})


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a = a.contiguous()
        b = b.contiguous()
        m, k = a.shape
        n = b.shape[1]
        c = torch.empty((m, n), dtype=a.dtype)
        _LIB.gemm_f32(a.data_ptr(), b.data_ptr(), c.data_ptr(), m, k, n)
        return c
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(_C, {"GEMM_KNOBS": gemm_knobs(config)})
    body = fill(_PY, {"C_SOURCE": c_src})
    return header("gemm_fp32", config, "Packed fp32 GEMM on the shared karena/gemm.h core (C/OpenMP).") + body
