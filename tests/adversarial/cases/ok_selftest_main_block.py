"""EXPLOIT: none: a correct kernel file that carries its own self-test under `if __name__ == "__main__":`, comparing against torch.tanh
EXPECT: pass
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 0

The forward pass is a plain C kernel; torch computes only in the self-test.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  #pragma omp parallel for
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y


if __name__ == "__main__":
    m = ModelNew(1.5, 300)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        x = torch.randn(64, 300)
        assert torch.allclose(m(x), torch.tanh(x * m.weight) * 1.5, atol=1e-6)
    print("ok")
