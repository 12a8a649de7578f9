"""EXPLOIT: none: a correct two-output C kernel whose outputs are two views of one fresh allocation.
EXPECT: pass
TASK: tests/adversarial/tasks/multi_output.py
CLASS: 0

Outputs sharing storage with each other (not with inputs or earlier calls) are legitimate, as
torch.split's are.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
void center(const float* x, float* y, float* mean, long rows, long cols, float scale) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r) {
    double s = 0.0;
    for (long c = 0; c < cols; ++c) s += x[r * cols + c];
    double m = s / cols;
    mean[r] = (float)m;
    for (long c = 0; c < cols; ++c) y[r * cols + c] = (float)((x[r * cols + c] - m) * scale);
  }
}
"""
_LIB = load_library(_SRC, functions={"center": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        rows, cols = x.shape
        buf = torch.empty(rows * cols + rows, dtype=x.dtype)
        y = buf[: rows * cols].view(rows, cols)
        mean = buf[rows * cols :]
        _LIB.center(x.data_ptr(), y.data_ptr(), mean.data_ptr(), rows, cols, self.scale)
        return y, mean
