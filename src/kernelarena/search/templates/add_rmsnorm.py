"""Fused residual add + RMSNorm template: the built-in kernel, written once, here (``_SOLUTION``;
``_DOC`` says what it does).

Knobs (``_common.norm_space``): ``reduce``, the sum of squares of ``h = x + residual`` as one
``omp simd reduction`` loop (``"simd"``, the default) or ``karena/rownorm.h``'s explicit chains
(``"VxU"``: U chains of V lanes); ``acc``, the accumulator type; ``rows_block`` and ``schedule``,
the OpenMP split of the rows (``rows_block`` 0: one contiguous share per thread). The file builds
with ``SIMD_FLAGS``, so ``KARENA_CPU_ISA`` forces the AVX2 or generic path. ``DEFAULT`` renders the
former hand-written solution; the built-in solution is this template rendered with the best stored
``karena tune`` config for the machine (``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import norm_features, norm_lite, norm_render, norm_space, norm_valid

TASK = "add_rmsnorm"

SPACE: dict[str, list[Any]] = norm_space()

DEFAULT: dict[str, Any] = {"reduce": "simd", "acc": "float", "rows_block": 0, "schedule": "static"}

constraints = norm_valid
features = norm_features


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """The simd loop or chains of one or two SIMD registers of lanes, both accumulator types, rows
    split statically (one share per thread, or blocks of 8)."""
    return norm_lite(hw.simd_floats, constraints)


_DOC = """Fused residual add + RMSNorm (C/OpenMP), one pass over the inputs.

Per row: pass 1 reads ``x`` and ``residual`` once from DRAM and accumulates the sum of squares of
``h = x + residual`` (a ``simd`` reduction, or the explicit chains of karena/rownorm.h); pass 2
recomputes ``h`` from the rows still in L1/L2 and writes both ``h`` and ``h * inv_rms * weight``,
with streaming stores (any ISA) when the outputs exceed the caches (no read-for-ownership of the
fresh outputs). DRAM traffic is the minimum: two reads, two writes per element. Rows are split
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

void add_rmsnorm_f32(const float* restrict x, const float* restrict res, const float* restrict w,
                     float* restrict y, float* restrict h, long rows, long dim, float eps) {
  int stream = rows * dim * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    #pragma omp for schedule(@SPLIT@) nowait
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* rr = res + r * dim;
      float* hr = h + r * dim;
      float* yr = y + r * dim;
@SUMSQ@
      float inv = (float)(1.0 / sqrt((double)ss / (double)dim + (double)eps));
      long c0 = 0;
      /* the second pass recomputes x + residual from L1/L2 so both outputs can be streamed */
      if (stream && (((uintptr_t)hr ^ (uintptr_t)yr) & (KV_VW * 4 - 1)) == 0) {
        for (; c0 < dim && ((uintptr_t)(yr + c0) & (KV_VW * 4 - 1)); ++c0) {
          float v = xr[c0] + rr[c0];
          hr[c0] = v;
          yr[c0] = (v * inv) * w[c0];
        }
        const kv_f vi = kv_set1(inv);
        for (; c0 + KV_VW <= dim; c0 += KV_VW) {
          const kv_f v = kv_load(xr + c0) + kv_load(rr + c0);
          kv_stream(hr + c0, v);
          kv_stream(yr + c0, v * vi * kv_load(w + c0));
        }
      }
      #pragma omp simd
      for (long c = c0; c < dim; ++c) {
        float v = xr[c] + rr[c];
        hr[c] = v;
        yr[c] = (v * inv) * w[c];
      }
    }
    kv_sfence();  /* make this thread's streaming stores visible before the region ends */
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"add_rmsnorm_f32": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "float"])},
)


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        residual = residual.contiguous()
        w = self.weight.detach().contiguous()
        y = torch.empty_like(x)
        h = torch.empty_like(x)
        dim = x.shape[-1]
        rows = x.numel() // max(dim, 1)
        _LIB.add_rmsnorm_f32(
            x.data_ptr(), residual.data_ptr(), w.data_ptr(), y.data_ptr(), h.data_ptr(), rows, dim, self.eps
        )
        return y, h
'''

_SUMSQ = """      @ACC@ ss = 0.f;
      #pragma omp simd reduction(+:ss)
      for (long c = 0; c < dim; ++c) {
        float v = xr[c] + rr[c];
        ss += v * v;
      }"""


def render(config: dict[str, Any]) -> str:
    return norm_render(TASK, _SOLUTION, config, _DOC, {"SUMSQ": (_SUMSQ, "ss", "kr_sq(xr[j] + rr[j])")})
