"""Streaming copy (C/OpenMP) for tests/data/tasks/copy_large.py: each thread copies its chunk with
non-temporal stores where the ISA has them (no read-for-ownership of the destination), like the
profile's ``copy_nt`` bandwidth kernel."""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <string.h>
#include <stdint.h>
#include <omp.h>
#include <immintrin.h>

void copy_f32(const float* restrict x, float* restrict y, long n) {
  #pragma omp parallel
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    long lo = n * t / T, hi = n * (t + 1) / T;
    long i = lo;
#if defined(__AVX512F__)
    for (; i < hi && ((uintptr_t)(y + i) & 63); ++i) y[i] = x[i];
    for (; i + 16 <= hi; i += 16) _mm512_stream_ps(y + i, _mm512_loadu_ps(x + i));
    _mm_sfence();
#elif defined(__AVX__)
    for (; i < hi && ((uintptr_t)(y + i) & 31); ++i) y[i] = x[i];
    for (; i + 8 <= hi; i += 8) _mm256_stream_ps(y + i, _mm256_loadu_ps(x + i));
    _mm_sfence();
#endif
    if (hi > i) memcpy(y + i, x + i, (size_t)(hi - i) * sizeof(float));
  }
}
"""
_LIB = load_library(_SRC, functions={"copy_f32": (None, ["ptr", "ptr", "long"])})


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.copy_f32(x.data_ptr(), y.data_ptr(), x.numel())
        return y
