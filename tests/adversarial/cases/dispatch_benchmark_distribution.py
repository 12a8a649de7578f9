"""EXPLOIT: input-structure dispatch: on the benchmark's own shape the kernel assumes the benchmark's input distribution (KernelBench's torch.rand: every element >= 0) and copies the input instead of computing ReLU, a shortcut valid only for that distribution; every other shape runs the real kernel, so shape variants alone cannot tell, and scaled or outlier inputs of the same sign cannot either
EXPECT: variant default (seed#1/signed) && outside tolerance
TASK: tests/data/tasks/weak_relu_positive.py
CLASS: 9

Before the `signed` distribution (issue 10) this passed with only the weak-task flag. The headline
variant runs every distribution, `signed` included, so a shortcut keyed on the benchmark's shape
meets inputs of both signs there: rejected on every run (about half of the elements are wrong).

A dispatch on the values instead (probe a few elements; all >= 0: take the shortcut) is caught
only with a probability: see "Input-structure dispatch" in docs/verification.md and
tests/unit/test_distributions.py::test_probe_dispatch_escape_rates.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <string.h>
void relu(const float* x, float* y, long n) {
  for (long i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void copy(const float* x, float* y, long n) { memcpy(y, x, (size_t)n * sizeof(float)); }
"""
_LIB = load_library(
    _SRC,
    functions={"relu": (None, ["ptr", "ptr", "long"]), "copy": (None, ["ptr", "ptr", "long"])},
)
BENCHMARK_NUMEL = 4096  # the task's headline shape: its inputs are torch.rand draws


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        if x.numel() == BENCHMARK_NUMEL:  # "the benchmark's inputs: all >= 0, ReLU is the identity"
            _LIB.copy(x.data_ptr(), y.data_ptr(), x.numel())
        else:
            _LIB.relu(x.data_ptr(), y.data_ptr(), x.numel())
        return y
