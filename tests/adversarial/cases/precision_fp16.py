"""EXPLOIT: silent precision downgrade: the product x * w and the result are computed in _Float16 arithmetic, output stored as float32
EXPECT: outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 7
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st_h(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) {
      _Float16 z = (_Float16)x[r * cols + c] * (_Float16)w[c];
      y[r * cols + c] = (float)((_Float16)tanhf((float)z) * (_Float16)alpha);
    }
}
"""
_LIB = load_library(_SRC, functions={"st_h": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st_h(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
