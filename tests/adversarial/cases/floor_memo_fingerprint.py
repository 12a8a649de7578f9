"""EXPLOIT: results cached across calls under a fingerprint of 1024 strided elements (enough to tell verification's distributions apart: 1% outliers touch some of them) that the harness's one-element nudge between timed calls almost never touches (p = 1024 / 16M per call); on a reduction the nudge moves the answer by ~1e-6, so the stale result also passes the sampled checks of timed calls; the reported time (a dict lookup) is far below the physical floor of reading 64 MiB
EXPECT: implausible speed && results reused across calls || a timed call && returned wrong results
TASK: tests/adversarial/tasks/mean_square.py
CLASS: 10
EXPECT_STAGE: bench

Verification gives every call new values, so the fingerprint misses there and the kernel computes
honestly: every verified case passes, and so does the second verification the implausible speed
triggers. What catches it: single calls on input sets no earlier call saw (after a warm-up on the
old sets) take the honest time, many times the timed median (`timing/floor.py`). Nudges accumulate
in the cycled input sets, so on some runs a late sampled timed call already sees the stale answer
drift past the tolerance (2.5e-4 relative after a few hundred calls): that rejection is allowed too.
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
/* bit patterns of up to 1024 evenly strided elements, mixed: the fingerprint */
unsigned long long fp(const unsigned int* x, long n) {
  long step = n > 1024 ? n / 1024 : 1;
  unsigned long long h = 1469598103934665603ULL;
  for (long i = 0; i < n; i += step) h = (h ^ x[i]) * 1099511628211ULL;
  return h;
}
"""
_LIB = load_library(_SRC, functions={"msq": ("double", ["ptr", "long"]), "fp": ("long", ["ptr", "long"])})
_MEMO: dict = {}


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        n = x.numel()
        key = (n, _LIB.fp(x.data_ptr(), n))
        if key not in _MEMO:
            _MEMO[key] = torch.full((), _LIB.msq(x.data_ptr(), n), dtype=torch.float32)
        return _MEMO[key].clone()
