"""Segmented cumulative sum as a one-pass blocked scan (C/OpenMP).

Rows are split into one contiguous block per thread. A thread first rebuilds the running sum that
enters its block by re-adding the rows from its segment's start up to the block start (a short walk
backwards over the sorted ids, bounded by one segment), then scans its block: a row either starts a
new segment (running sum = row) or adds itself to the running sum, which lives in an L1-resident
array updated with vectorized adds and streamed to the output with non-temporal stores (no
read-for-ownership of the write-once output). The summation order is exactly that of a sequential scan, so the
result does not depend on the thread count. Eager PyTorch makes one ``cumsum`` call per segment
plus a concatenation.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <stdlib.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include "karena/vmath.h"

/* Write-once outputs go straight to memory with non-temporal stores (no read-for-ownership of the
   destination lines, which a plain store would fetch first); the edges use plain stores. */
static inline void stream_store(float* restrict dst, const float* restrict src, long n) {
  kv_stream_copy(dst, src, n);
}

static inline void stream_fence(void) {  /* order this thread's streaming stores before returning */
  kv_sfence();
}

void segmented_cumsum_f32(const float* restrict x, const long* restrict ids, float* restrict y,
                          long n, long d) {
  #pragma omp parallel
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    long lo = n * t / nt, hi = n * (t + 1) / nt;
    if (lo < hi) {
      float* acc = (float*)aligned_alloc(64, sizeof(float) * ((d + 15) / 16 * 16));
      long s = lo;                                /* start of the segment that contains row lo */
      while (s > 0 && ids[s - 1] == ids[lo]) --s;
      for (long j = 0; j < d; ++j) acc[j] = 0.f;
      for (long r = s; r < lo; ++r) {             /* carry into this block, in sequential order */
        const float* xr = x + r * d;
        #pragma omp simd
        for (long j = 0; j < d; ++j) acc[j] += xr[j];
      }
      for (long r = lo; r < hi; ++r) {
        const float* xr = x + r * d; float* yr = y + r * d;
        if (r == s || ids[r] != ids[r - 1]) {     /* a segment starts here */
          #pragma omp simd
          for (long j = 0; j < d; ++j) acc[j] = xr[j];
        } else {
          #pragma omp simd
          for (long j = 0; j < d; ++j) acc[j] += xr[j];
        }
        stream_store(yr, acc, d);
      }
      free(acc);
    }
    stream_fence();
  }
}
"""

# PyTorch's own floating-point contract (it is built with -fno-math-errno -fno-trapping-math): lets gcc
# vectorize loops with sqrtf and the clamps of the inlined exp; results, inf and nan are unchanged.
_FLAGS = SIMD_FLAGS

_LIB = load_library(
    _SRC, flags=_FLAGS, functions={"segmented_cumsum_f32": (None, ["ptr", "ptr", "ptr", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, values: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        x = values.contiguous()
        ids = segment_ids.to(torch.int64).contiguous()
        y = torch.empty_like(x)
        n = x.shape[0]
        d = x.numel() // n if n else 0
        _LIB.segmented_cumsum_f32(x.data_ptr(), ids.data_ptr(), y.data_ptr(), n, d)
        return y
