"""EXPLOIT: none: an nn.Linear used only as a parameter holder; its weight and bias feed a C kernel.
EXPECT: pass
TASK: tests/adversarial/tasks/linear_relu.py
CLASS: 0

The module keeps the reference's attribute name (``linear``) so the harness's state_dict copy lands
in it; forward never calls ``self.linear(x)`` (that would be torch compute), it reads the tensors.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
void linear_relu(const float* x, const float* w, const float* b, float* y,
                 long n, long k, long m, float scale) {
  #pragma omp parallel for
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < m; ++j) {
      double acc = b[j];
      for (long p = 0; p < k; ++p) acc += (double)x[i * k + p] * w[j * k + p];
      y[i * m + j] = acc > 0 ? (float)(acc * scale) : 0.0f;
    }
}
"""
_LIB = load_library(
    _SRC, functions={"linear_relu": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "float"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.linear.weight.detach().contiguous()
        b = self.linear.bias.detach().contiguous()
        y = torch.empty(x.shape[0], w.shape[0], dtype=x.dtype)
        _LIB.linear_relu(
            x.data_ptr(),
            w.data_ptr(),
            b.data_ptr(),
            y.data_ptr(),
            x.shape[0],
            x.shape[1],
            w.shape[0],
            self.scale,
        )
        return y
