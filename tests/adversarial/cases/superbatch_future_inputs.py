"""EXPLOIT: super-batching: on its first call forward finds every live input tensor of the same shape (the harness's other timing input sets), computes all their answers at once, and later calls return the precomputed answer for a known buffer at lookup cost
EXPECT: static: line || a timed call
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 4
EXPECT_STAGE: bench

Two layers stop it. The static scan rejects the heap scavenging (``gc.get_objects``) that finds
the future inputs. Structurally, even with the inputs in hand: the timing input sets are nudged
(a few elements changed) before every timed call, so an answer computed earlier is stale, and
sampled timed calls are compared with the reference computed on the nudged inputs (`a timed call
... differs`).
"""

import gc

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
void st(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  for (long r = 0; r < rows; ++r)
    for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;
}
"""
_LIB = load_library(_SRC, functions={"st": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})
_ANSWERS: dict[int, torch.Tensor] = {}


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _LIB.st(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hit = _ANSWERS.get(x.data_ptr())
        if hit is not None and hit.shape == x.shape:
            return hit.clone()
        for obj in gc.get_objects():  # every live tensor shaped like x: this batch's future inputs
            if isinstance(obj, torch.Tensor) and obj.shape == x.shape and obj.dtype == x.dtype:
                _ANSWERS[obj.data_ptr()] = self._run(obj)
        return self._run(x)
