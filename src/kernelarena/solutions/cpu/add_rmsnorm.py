"""Fused residual add + RMSNorm (C/OpenMP), one pass over the inputs.

Per row: pass 1 reads ``x`` and ``residual`` once from DRAM and accumulates the sum of squares of
``h = x + residual``; pass 2 recomputes ``h`` from the rows still in L1/L2 and writes both ``h`` and
``h * inv_rms * weight``, with AVX-512 streaming stores when the outputs exceed the caches (no
read-for-ownership of the fresh outputs). DRAM traffic is the minimum: two reads, two writes per
element. Rows are split statically across OpenMP threads.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdint.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

/* outputs larger than this bypass the caches (streaming stores: no read-for-ownership) */
#define STREAM_BYTES (8L << 20)

void add_rmsnorm_f32(const float* restrict x, const float* restrict res, const float* restrict w,
                     float* restrict y, float* restrict h, long rows, long dim, float eps) {
  int stream = rows * dim * 4 >= STREAM_BYTES;
  #pragma omp parallel
  {
    #pragma omp for schedule(static) nowait
    for (long r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* rr = res + r * dim;
      float* hr = h + r * dim;
      float* yr = y + r * dim;
      float ss = 0.f;
      #pragma omp simd reduction(+:ss)
      for (long c = 0; c < dim; ++c) {
        float v = xr[c] + rr[c];
        ss += v * v;
      }
      float inv = (float)(1.0 / sqrt((double)ss / (double)dim + (double)eps));
      long c0 = 0;
#ifdef __AVX512F__
      /* the second pass recomputes x + residual from L1/L2 so both outputs can be streamed */
      if (stream && (((uintptr_t)hr ^ (uintptr_t)yr) & 63) == 0) {
        for (; c0 < dim && ((uintptr_t)(yr + c0) & 63); ++c0) {
          float v = xr[c0] + rr[c0];
          hr[c0] = v;
          yr[c0] = (v * inv) * w[c0];
        }
        __m512 vi = _mm512_set1_ps(inv);
        for (; c0 + 16 <= dim; c0 += 16) {
          __m512 v = _mm512_add_ps(_mm512_loadu_ps(xr + c0), _mm512_loadu_ps(rr + c0));
          _mm512_stream_ps(hr + c0, v);
          _mm512_stream_ps(yr + c0, _mm512_mul_ps(_mm512_mul_ps(v, vi), _mm512_loadu_ps(w + c0)));
        }
      }
#endif
      #pragma omp simd
      for (long c = c0; c < dim; ++c) {
        float v = xr[c] + rr[c];
        hr[c] = v;
        yr[c] = (v * inv) * w[c];
      }
    }
#ifdef __AVX512F__
    _mm_sfence();  /* make this thread's streaming stores visible before the region ends */
#endif
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
