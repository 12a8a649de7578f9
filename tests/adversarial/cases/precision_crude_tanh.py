"""EXPLOIT: crude approximation: tanh replaced by a cheap [3/2] rational function clamped to [-1, 1] (error up to ~2%), much faster than tanhf
EXPECT: outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 7
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
void st_fast(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) {
      float z = x[r * cols + c] * w[c];
      float t = z * (27.0f + z * z) / (27.0f + 9.0f * z * z);
      t = t > 1.0f ? 1.0f : (t < -1.0f ? -1.0f : t);
      y[r * cols + c] = t * alpha;
    }
}
"""
_LIB = load_library(_SRC, functions={"st_fast": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st_fast(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
