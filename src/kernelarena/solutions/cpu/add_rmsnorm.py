"""Fused residual add + RMSNorm (C/OpenMP), one pass over the inputs.

Per row: ``h = x + residual`` is written out while its sum of squares is accumulated (one read of
each input, one write of ``h``); the second pass rereads ``h`` from L1/L2, not DRAM, and writes
``h * inv_rms * weight``. Rows are split statically across OpenMP threads.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>

void add_rmsnorm_f32(const float* restrict x, const float* restrict res, const float* restrict w,
                     float* restrict y, float* restrict h, long rows, long dim, float eps) {
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float* rr = res + r * dim;
    float* hr = h + r * dim;
    float* yr = y + r * dim;
    float ss = 0.f;
    #pragma omp simd reduction(+:ss)
    for (long c = 0; c < dim; ++c) {
      float v = xr[c] + rr[c];
      hr[c] = v;
      ss += v * v;
    }
    float inv = (float)(1.0 / sqrt((double)ss / (double)dim + (double)eps));
    #pragma omp simd
    for (long c = 0; c < dim; ++c) yr[c] = (hr[c] * inv) * w[c];
  }
}
"""

_LIB = load_library(
    _SRC, functions={"add_rmsnorm_f32": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "float"])}
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
