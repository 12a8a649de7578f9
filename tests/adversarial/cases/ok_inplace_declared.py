"""EXPLOIT: none: a correct in-place kernel for a task that declares IN_PLACE = True (writes x, returns x).
EXPECT: pass
TASK: tests/adversarial/tasks/inplace_tanh.py
CLASS: 0
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void scaled_tanh_inplace(float* x, const float* w, long rows, long cols, float alpha) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) x[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"scaled_tanh_inplace": (None, ["ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.is_contiguous()
        _LIB.scaled_tanh_inplace(x.data_ptr(), self.weight.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return x
