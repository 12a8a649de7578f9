"""EXPLOIT: the per-instance memo of memo_same_buffer.py on a task whose input is a transposed (non-contiguous) view
EXPECT: a timed call
TASK: tests/adversarial/tasks/noncontig_tanh.py
CLASS: 10
EXPECT_STAGE: bench

Regression case: _nudge used to skip non-contiguous inputs (x.view(-1) only when contiguous), so
this memo passed timing; it now indexes the tensor whatever its layout.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, long sr, long sc, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * sr + c * sc] * w[c]) * alpha;
}
"""
_LIB = load_library(
    _SRC, functions={"st": (None, ["ptr", "long", "long", "ptr", "ptr", "long", "long", "float"])}
)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))
        self._memo: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.data_ptr(), tuple(x.shape), x.stride())
        if key in self._memo:
            return self._memo[key].clone()
        rows, cols = x.shape
        y = torch.empty(rows, cols, dtype=x.dtype)
        sr, sc = x.stride()
        _LIB.st(x.data_ptr(), sr, sc, self.weight.data_ptr(), y.data_ptr(), rows, cols, self.alpha)
        self._memo[key] = y
        return y.clone()
