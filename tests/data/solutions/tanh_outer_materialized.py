"""Correct but over tests/data/tasks/tanh_outer_rowsum.py's memory budget: the whole [n, m]
matrix is allocated and written (16 MiB at the headline), then summed by rows."""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void fill(const float* x, const float* y, float* t, long n, long m) {
  #pragma omp parallel for
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < m; ++j) t[i * m + j] = tanhf(x[i] * y[j]);
}
void rowsum(const float* t, float* out, long n, long m) {
  for (long i = 0; i < n; ++i) {
    double s = 0.0;
    for (long j = 0; j < m; ++j) s += t[i * m + j];
    out[i] = (float)s;
  }
}
"""
_LIB = load_library(
    _SRC,
    functions={
        "fill": (None, ["ptr", "ptr", "ptr", "long", "long"]),
        "rowsum": (None, ["ptr", "ptr", "long", "long"]),
    },
)


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.contiguous(), y.contiguous()
        t = torch.empty((x.shape[0], y.shape[0]), dtype=torch.float32)  # the materialized matrix
        _LIB.fill(x.data_ptr(), y.data_ptr(), t.data_ptr(), x.shape[0], y.shape[0])
        out = torch.empty_like(x)
        _LIB.rowsum(t.data_ptr(), out.data_ptr(), x.shape[0], y.shape[0])
        return out
