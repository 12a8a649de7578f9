"""Segmented cumulative sum in numba: one sequential pass per column block, parallel over columns.

The scan runs down the rows; each thread owns a block of columns and keeps their running sums,
resetting them where the segment id changes. Sums are kept in float64 so that long segments (up to
every row of the input) stay within the float32 tolerance of the reference's per-segment cumsum.
"""

import numba
import numpy as np
import torch
import torch.nn as nn

_COLS = 64  # columns per task: a row of the block stays in one or two cache lines per step


@numba.njit(parallel=True, fastmath=False, cache=True)
def _segcumsum(values, seg, out):
    n, d = values.shape
    nblocks = (d + _COLS - 1) // _COLS
    for b in numba.prange(nblocks):
        c0 = b * _COLS
        c1 = min(d, c0 + _COLS)
        acc = np.zeros(c1 - c0, dtype=np.float64)
        for i in range(n):
            if i > 0 and seg[i] != seg[i - 1]:
                acc[:] = 0.0
            for c in range(c0, c1):
                acc[c - c0] += values[i, c]
                out[i, c] = np.float32(acc[c - c0])


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, values: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        v = values.contiguous()
        out = torch.empty_like(v)
        _segcumsum(v.numpy(), segment_ids.contiguous().numpy(), out.numpy())
        return out
