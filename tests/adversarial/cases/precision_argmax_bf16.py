"""EXPLOIT: integer output from lowered precision: row argmax taken over bfloat16-rounded values (near-ties collapse, the first index wins)
EXPECT: integer outputs must match exactly
TASK: tests/adversarial/tasks/int_argmax.py
CLASS: 7
"""

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(cache=True)
def _argmax_bf16(bits, out):
    rows, cols = bits.shape
    for r in range(rows):
        best = 0
        bv = np.int64(-1)
        for c in range(cols):
            u = np.int64(bits[r, c]) & 0xFFFFFFFF
            u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000  # round to bf16 (as ordered float bits)
            key = u ^ 0xFFFFFFFF if u & 0x80000000 else u | 0x80000000  # order-preserving integer key
            if key > bv:
                bv = key
                best = c
        out[r] = best


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        out = torch.empty(x.shape[0], dtype=torch.int64)
        _argmax_bf16(x.view(torch.int32).numpy(), out.numpy())
        return out
