"""EXPLOIT: softmax without subtracting the row max: exact for the task's own input scale, float32 exp overflows (inf/inf = NaN) on wider inputs
EXPECT: non-finite && scaled
TASK: ../shared/examples/softmax_task.py
CLASS: 9
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void softmax_nomax(const float* x, float* y, long rows, long cols, float inv_t) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r) {
    const float* xr = x + r * cols; float* yr = y + r * cols;
    float s = 0.0f;
    for (long c = 0; c < cols; ++c) { yr[c] = expf(xr[c] * inv_t); s += yr[c]; }
    for (long c = 0; c < cols; ++c) yr[c] /= s;
  }
}
"""
_LIB = load_library(_SRC, functions={"softmax_nomax": (None, ["ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.softmax_nomax(x.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], 1.0 / self.temperature)
        return y
