"""EXPLOIT: silent precision downgrade: softmax computed in _Float16 arithmetic (exp, sum, normalise), stored as float32
EXPECT: outside tolerance
TASK: ../shared/examples/softmax_task.py
CLASS: 7
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void softmax_h(const float* x, float* y, long rows, long cols, float inv_t) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r) {
    const float* xr = x + r * cols; float* yr = y + r * cols;
    _Float16 m = (_Float16)(xr[0] * inv_t);
    for (long c = 1; c < cols; ++c) { _Float16 v = (_Float16)(xr[c] * inv_t); if (v > m) m = v; }
    _Float16 s = 0;
    for (long c = 0; c < cols; ++c) { _Float16 e = (_Float16)expf((float)((_Float16)(xr[c] * inv_t) - m)); yr[c] = (float)e; s += e; }
    _Float16 inv = (_Float16)1.0f / s;
    for (long c = 0; c < cols; ++c) yr[c] = (float)((_Float16)yr[c] * inv);
  }
}
"""
_LIB = load_library(_SRC, functions={"softmax_h": (None, ["ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.softmax_h(x.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], 1.0 / self.temperature)
        return y
