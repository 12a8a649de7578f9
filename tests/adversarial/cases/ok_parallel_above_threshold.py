"""EXPLOIT: none: a correct kernel that goes parallel (OpenMP) only above a size threshold, so its thread pool starts on the first large call
EXPECT: pass
TASK: tests/adversarial/tasks/noncontig_tanh.py
CLASS: 0
THREADS: 4

Thresholds like this are standard (parallel overhead dominates small inputs). With THREADS: 4 the
OpenMP pool starts on the 13x1001 variant, after the headline ran serially: the harness's
native-thread growth rule must not mistake a lazily started pool for escaped work. (It does not
here because the kernel's libgomp.so.1 resolves to the copy torch already loaded, whose pool
exists; a kernel with its own pthread pool started lazily could still trip that rule.)
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, long sr, long sc, const float* w, float* y, long rows, long cols, float alpha, int par) {
  #pragma omp parallel for if(par)
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * sr + c * sc] * w[c]) * alpha;
}
"""
_LIB = load_library(
    _SRC, functions={"st": (None, ["ptr", "long", "long", "ptr", "ptr", "long", "long", "float", "int"])}
)
PARALLEL_MIN_ELEMENTS = 12500


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape
        y = torch.empty(rows, cols, dtype=x.dtype)
        sr, sc = x.stride()
        par = int(x.numel() >= PARALLEL_MIN_ELEMENTS)
        _LIB.st(x.data_ptr(), sr, sc, self.weight.data_ptr(), y.data_ptr(), rows, cols, self.alpha, par)
        return y
