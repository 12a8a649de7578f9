"""EXPLOIT: ignores the thread allotment: the OpenMP kernel asks for 8 threads (num_threads clause) whatever OMP_NUM_THREADS the harness set, so on a many-core machine it races a baseline held to fewer threads
EXPECT: thread
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 10

Regression case (was a GAP: nothing checked the thread allotment; the native-thread guard only
looked for growth after the second call, and a pool of 8 started on the first call never grows).
The parent now reads the CPU time of each of the worker's threads from /proc/<pid>/task around
every verified case, where candidate code cannot reach, and counts the threads that ran.

Correct results; on this 2-core machine the extra threads buy nothing, which is why only a
thread-count guard can catch it.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  #pragma omp parallel for num_threads(8)
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
