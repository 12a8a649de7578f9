"""EXPLOIT: silent precision downgrade: inputs and result rounded to bfloat16 inside the kernel (half the memory traffic), output still float32
EXPECT: outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 7
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
static inline float bf16(float v) {  /* round to nearest even, keep 8 mantissa bits */
  uint32_t u; memcpy(&u, &v, 4);
  u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
  memcpy(&v, &u, 4); return v;
}
void st_bf16(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = bf16(tanhf(bf16(x[r * cols + c]) * bf16(w[c])) * alpha);
}
"""
_LIB = load_library(_SRC, functions={"st_bf16": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st_bf16(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
