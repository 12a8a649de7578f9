"""EXPLOIT: none: a correct integer-output numba kernel (row argmax, first index on ties, NaN wins as in torch).
EXPECT: pass
TASK: tests/adversarial/tasks/int_argmax.py
CLASS: 0
"""

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, cache=True)
def _argmax(x, out):
    rows, cols = x.shape
    for r in numba.prange(rows):
        best = 0
        bv = x[r, 0]
        for c in range(1, cols):
            v = x[r, c]
            if np.isnan(bv):
                break
            if v > bv or np.isnan(v):
                best = c
                bv = v
        out[r] = best


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        out = torch.empty(x.shape[0], dtype=torch.int64)
        _argmax(x.numpy(), out.numpy())
        return out
