"""HGRN gated recurrence in numba: the time loop runs inside, channels and batch in parallel.

Each (batch, channel-block) pair is independent; a thread walks the time axis once carrying the
states of its channel block in a small local array, so every element of ``c`` and ``f`` is read
once and every state written once (the eager reference launches several kernels per time step).
"""

import numba
import numpy as np
import torch
import torch.nn as nn

_COLS = 64


@numba.njit(parallel=True, fastmath=False, cache=True)
def _hgrn(c, f, h0, out):
    batch, seq, dim = c.shape
    nblocks = (dim + _COLS - 1) // _COLS
    for job in numba.prange(batch * nblocks):
        b = job // nblocks
        d0 = (job % nblocks) * _COLS
        d1 = min(dim, d0 + _COLS)
        h = np.empty(d1 - d0, dtype=np.float32)
        for d in range(d0, d1):
            h[d - d0] = h0[b, d]
        for t in range(seq):
            for d in range(d0, d1):
                ft = f[b, t, d]
                h[d - d0] = ft * h[d - d0] + (np.float32(1.0) - ft) * c[b, t, d]
                out[b, t, d] = h[d - d0]


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, c: torch.Tensor, f: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        c, f, h0 = c.contiguous(), f.contiguous(), h0.contiguous()
        out = torch.empty_like(c)
        _hgrn(c.numpy(), f.numpy(), h0.numpy(), out.numpy())
        return out
