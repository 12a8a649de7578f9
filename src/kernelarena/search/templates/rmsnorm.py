"""RMSNorm template: the built-in kernel, written once, here (``_SOLUTION``; ``_DOC`` says what it does).

Knobs (``_common.norm_space``): ``reduce``, the row's sum of squares as one ``omp simd reduction``
loop (``"simd"``, the default) or ``karena/rownorm.h``'s explicit chains (``"VxU"``: U chains of V
lanes); ``acc``, the accumulator type; ``prefetch``, a software-prefetch distance in floats for the
chains (0 = none; the simd loop has no per-block hook, so it takes 0 only); ``rows_block`` and
``schedule``, the OpenMP split of the rows (``rows_block`` 0: one contiguous share per thread). The
file builds with ``SIMD_FLAGS``, so ``KARENA_CPU_ISA`` forces the AVX2 or generic path. ``DEFAULT``
renders the former hand-written solution; the built-in solution is this template rendered with the
best stored ``karena tune`` config for the machine (``DEFAULT`` otherwise).
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import norm_features, norm_lite, norm_render, norm_space, norm_valid

TASK = "rmsnorm"

SPACE: dict[str, list[Any]] = norm_space(prefetch=[0, 512])

DEFAULT: dict[str, Any] = {
    "reduce": "simd",
    "acc": "float",
    "prefetch": 0,
    "rows_block": 0,
    "schedule": "static",
}


def constraints(config: dict[str, Any]) -> bool:
    return norm_valid(config) and (config["reduce"] != "simd" or config["prefetch"] == 0)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """The simd loop or chains of one or two SIMD registers of lanes, both accumulator types, rows
    split statically (one share per thread, or blocks of 8) and, for the chains, software prefetch
    on or off (whether the hardware prefetcher keeps up with two streams is machine-specific; on the
    VM the chains were first tuned on, prefetch=512 won every top spot of their space)."""
    return norm_lite(hw.simd_floats, constraints, prefetch=SPACE["prefetch"])


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {**norm_features(config, hw), "prefetch": float(config["prefetch"])}


_DOC = """RMSNorm in one fused pass per row (C/OpenMP).

Each row is read once to accumulate the sum of squares (a ``simd`` reduction gcc turns into
AVX-512/AVX2 FMAs, or the explicit chains of karena/rownorm.h), then scaled by ``inv_rms * weight``
while it is still in L1/L2 and written once; outputs larger than the caches are written with
streaming stores (karena/vmath.h: AVX-512, AVX2 or SSE) (no read-for-ownership of the fresh output,
a third less DRAM traffic). Rows are split across OpenMP threads. Eager PyTorch instead materialises
``x^2``, the mean, ``x * inv_rms`` and the final product as separate tensors."""

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

void rmsnorm_f32(const float* restrict x, const float* restrict w, float* restrict y,
                 long rows, long dim, float eps) {
  int stream = rows * dim * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    #pragma omp for schedule(@SPLIT@) nowait
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
@SUMSQ@
      /* divide in double: the mean of up to ~1e5 squares stays exact to float rounding */
      float inv = (float)(1.0 / sqrt((double)ss / (double)dim + (double)eps));
      long c0 = 0;
      if (stream) {
        for (; c0 < dim && ((uintptr_t)(yr + c0) & (KV_VW * 4 - 1)); ++c0) yr[c0] = (xr[c0] * inv) * w[c0];
        const kv_f vi = kv_set1(inv);
        for (; c0 + KV_VW <= dim; c0 += KV_VW) kv_stream(yr + c0, kv_load(xr + c0) * vi * kv_load(w + c0));
      }
      #pragma omp simd
      for (long c = c0; c < dim; ++c) yr[c] = (xr[c] * inv) * w[c];
    }
    kv_sfence();  /* make this thread's streaming stores visible before the region ends */
  }
}
"""

_LIB = load_library(
    _SRC, flags=SIMD_FLAGS, functions={"rmsnorm_f32": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])}
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
        dim = x.shape[-1]
        _LIB.rmsnorm_f32(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.numel() // max(dim, 1), dim, self.eps)
        return y
'''

_SUMSQ = """      @ACC@ ss = 0.f;
      #pragma omp simd reduction(+:ss)
      for (long c = 0; c < dim; ++c) ss += xr[c] * xr[c];"""


def render(config: dict[str, Any]) -> str:
    prefetch = f"__builtin_prefetch(xr + (i) + {config['prefetch']})" if config["prefetch"] else ""
    return norm_render(TASK, _SOLUTION, config, _DOC, {"SUMSQ": (_SUMSQ, "ss", "kr_sq(xr[j])")}, prefetch)
