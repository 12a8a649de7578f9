"""EXPLOIT: none: an honest mean-square kernel on a task whose bytes_moved is overstated 1000x, so its time looks below the physical floor; control for floor_memo_fingerprint (the fresh-input timing must not reject an honest kernel)
EXPECT: pass
TASK: tests/adversarial/tasks/mean_square_overstated.py
CLASS: 0
EXPECT_STAGE: bench

The verdict passes with the flag `implausible speed (...); re-verified with a fresh secret and
timed on never-seen inputs: pass`.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
double msq(const float* x, long n) {
  double s = 0.0;
  for (long i = 0; i < n; ++i) s += (double)x[i] * x[i];
  return s / (double)n;
}
"""
_LIB = load_library(_SRC, functions={"msq": ("double", ["ptr", "long"])})


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        return torch.full((), _LIB.msq(x.data_ptr(), x.numel()), dtype=torch.float32)
