"""EXPLOIT: none: a correct kernel that pre-packs its weights once per module instance (w * alpha).
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

Caching derived weights is legitimate (weights do not change between calls); caching outputs is
not. The pre-packed buffer is a plain attribute, not part of the state dict.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void pack(const float* w, float* wp, long n) { for (long i = 0; i < n; ++i) wp[i] = w[i]; }
void apply(const float* x, const float* wp, float* y, long rows, long cols, float alpha) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = alpha * tanhf(x[r * cols + c] * wp[c]);
}
"""
_LIB = load_library(
    _SRC,
    functions={
        "pack": (None, ["ptr", "ptr", "long"]),
        "apply": (None, ["ptr", "ptr", "ptr", "long", "long", "float"]),
    },
)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))
        self._packed = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed is None:
            self._packed = torch.empty_like(self.weight.detach())
            _LIB.pack(self.weight.data_ptr(), self._packed.data_ptr(), self.weight.numel())
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.apply(x.data_ptr(), self._packed.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
