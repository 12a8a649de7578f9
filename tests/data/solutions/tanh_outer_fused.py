"""Within tests/data/tasks/tanh_outer_rowsum.py's memory budget: one pass, nothing materialized."""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void rowsum(const float* x, const float* y, float* out, long n, long m) {
  #pragma omp parallel for
  for (long i = 0; i < n; ++i) {
    double s = 0.0;
    for (long j = 0; j < m; ++j) s += tanhf(x[i] * y[j]);
    out[i] = (float)s;
  }
}
"""
_LIB = load_library(_SRC, functions={"rowsum": (None, ["ptr", "ptr", "ptr", "long", "long"])})


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.contiguous(), y.contiguous()
        out = torch.empty_like(x)
        _LIB.rowsum(x.data_ptr(), y.data_ptr(), out.data_ptr(), x.shape[0], y.shape[0])
        return out
