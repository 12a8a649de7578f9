"""RMSNorm in one fused pass per row (C/OpenMP).

Each row is read once to accumulate the sum of squares (a ``simd`` reduction gcc turns into
AVX-512/AVX2 FMAs), then scaled by ``inv_rms * weight`` while it is still in L1/L2 and written
once; outputs larger than the caches are written with streaming stores (karena/vmath.h: AVX-512, AVX2 or SSE) (no
read-for-ownership of the fresh output, a third less DRAM traffic). Rows are split statically
across OpenMP threads. Eager PyTorch instead materialises
``x^2``, the mean, ``x * inv_rms`` and the final product as separate tensors.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include "karena/vmath.h"

/* outputs larger than this bypass the caches (streaming stores: no read-for-ownership) */
#define STREAM_BYTES (8L << 20)

void rmsnorm_f32(const float* restrict x, const float* restrict w, float* restrict y,
                 long rows, long dim, float eps) {
  int stream = rows * dim * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    #pragma omp for schedule(static) nowait
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      float ss = 0.f;
      #pragma omp simd reduction(+:ss)
      for (long c = 0; c < dim; ++c) ss += xr[c] * xr[c];
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
