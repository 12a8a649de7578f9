"""EXPLOIT: none: a correct kernel that returns a non-contiguous view (transposed, offset into a padded fresh buffer).
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

The kernel writes the result column-major into a buffer with guard words before and after, and
returns the (rows, cols) transposed view: right values, unusual strides, non-zero storage offset.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void scaled_tanh_cm(const float* x, const float* w, float* yt, long rows, long cols, float alpha) {
  #pragma omp parallel for
  for (long c = 0; c < cols; ++c)
    for (long r = 0; r < rows; ++r) yt[c * rows + r] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(
    _SRC, functions={"scaled_tanh_cm": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])}
)
_PAD = 16


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        rows, cols = x.shape
        buf = torch.full((rows * cols + 2 * _PAD,), -7.0, dtype=x.dtype)  # guard words
        yt = buf[_PAD : _PAD + rows * cols].view(cols, rows)
        _LIB.scaled_tanh_cm(x.data_ptr(), self.weight.data_ptr(), yt.data_ptr(), rows, cols, self.alpha)
        return yt.t()
