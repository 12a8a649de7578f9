"""LayerNorm template: the built-in kernel, written once, here (``_SOLUTION``; ``_DOC`` says what it does).

Knobs (``_common.norm_space``): ``reduce``, the row's two sums (of x, then of squared deviations
from the mean) as ``omp simd reduction`` loops (``"simd"``, the default) or ``karena/rownorm.h``'s
explicit chains (``"VxU"``: U chains of V lanes); ``acc``, the accumulator type; ``rows_block`` and
``schedule``, the OpenMP split of the rows (``rows_block`` 0: one contiguous share per thread). The
file builds with ``SIMD_FLAGS``, so ``KARENA_CPU_ISA`` forces the AVX2 or generic path. ``DEFAULT``
renders the former hand-written solution; the built-in solution is this template rendered with the
best stored ``karena tune`` config for the machine (``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import norm_features, norm_lite, norm_render, norm_space, norm_valid

TASK = "layernorm"

SPACE: dict[str, list[Any]] = norm_space()

DEFAULT: dict[str, Any] = {"reduce": "simd", "acc": "float", "rows_block": 0, "schedule": "static"}

constraints = norm_valid
features = norm_features


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """The simd loops or chains of one or two SIMD registers of lanes, both accumulator types, rows
    split statically (one share per thread, or blocks of 8)."""
    return norm_lite(hw.simd_floats, constraints)


_DOC = """LayerNorm (C/OpenMP): one DRAM read and one DRAM write per element.

Per row: pass 1 sums x (reads DRAM), pass 2 sums (x - mean)^2 (two-pass variance: exact for rows
with a large common offset, where ``E[x^2] - E[x]^2`` cancels), pass 3 writes
``(x - mean) * rstd * weight + bias``. Passes 2 and 3 reread the row from L1/L2 (a 4096-float row is
16 KiB). All inner loops are ``simd`` loops gcc vectorises (or, for the sums, the explicit chains of
karena/rownorm.h); outputs larger than the caches are written with streaming stores
(karena/vmath.h: AVX-512, AVX2 or SSE) (no read-for-ownership of the fresh output: a third less
DRAM traffic, which is where this kernel beats PyTorch's own fused LayerNorm). Rows are split
across OpenMP threads."""

_SOLUTION = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>
@NORM_INCLUDE@

/* outputs larger than this bypass the caches (streaming stores: no read-for-ownership) */
#define STREAM_BYTES (8L << 20)

void layernorm_f32(const float* restrict x, const float* restrict w, const float* restrict b,
                   float* restrict y, long rows, long dim, float eps) {
  int stream = rows * dim * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    #pragma omp for schedule(@SPLIT@) nowait
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
@SUM@
      float mean = (float)((double)s / (double)dim);
@SUMSQ@
      float rstd = (float)(1.0 / sqrt((double)ss / (double)dim + (double)eps));
      long c0 = 0;
      if (stream) {
        for (; c0 < dim && ((uintptr_t)(yr + c0) & (KV_VW * 4 - 1)); ++c0)
          yr[c0] = (xr[c0] - mean) * rstd * w[c0] + b[c0];
        const kv_f vm = kv_set1(mean), vr = kv_set1(rstd);
        for (; c0 + KV_VW <= dim; c0 += KV_VW)
          kv_stream(yr + c0, (kv_load(xr + c0) - vm) * vr * kv_load(w + c0) + kv_load(b + c0));
      }
      #pragma omp simd
      for (long c = c0; c < dim; ++c) yr[c] = (xr[c] - mean) * rstd * w[c] + b[c];
    }
    kv_sfence();  /* make this thread's streaming stores visible before the region ends */
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"layernorm_f32": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "float"])},
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
        dim = x.shape[-1]
        _LIB.layernorm_f32(
            x.data_ptr(),
            w.data_ptr(),
            b.data_ptr(),
            y.data_ptr(),
            x.numel() // max(dim, 1),
            dim,
            self.norm.eps,
        )
        return y
'''

_SUM = """      @ACC@ s = 0.f;
      #pragma omp simd reduction(+:s)
      for (long c = 0; c < dim; ++c) s += xr[c];"""

_SUMSQ = """      @ACC@ ss = 0.f;
      #pragma omp simd reduction(+:ss)
      for (long c = 0; c < dim; ++c) {
        float d = xr[c] - mean;
        ss += d * d;
      }"""


def render(config: dict[str, Any]) -> str:
    sums = {"SUM": (_SUM, "s", "xr[j]"), "SUMSQ": (_SUMSQ, "ss", "kr_sq(xr[j] - mean)")}
    return norm_render(TASK, _SOLUTION, config, _DOC, sums)
