"""EXPLOIT: none: an nn.Conv2d(kernel_size=1) holder whose weight and bias feed a numba channel GEMM.
EXPECT: pass
TASK: tests/adversarial/tasks/pointwise_conv.py
CLASS: 0
"""

import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, cache=True)
def _pointwise(x, w, b, y):
    n, cin, h, wd = x.shape
    cout = w.shape[0]
    for job in numba.prange(n * cout):
        i = job // cout
        o = job % cout
        for r in range(h):
            for c in range(wd):
                acc = np.float64(b[o])
                for ci in range(cin):
                    acc += np.float64(w[o, ci]) * x[i, ci, r, c]
                y[i, o, r, c] = np.float32(acc)


class ModelNew(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.conv.weight.detach().reshape(self.conv.out_channels, -1).contiguous()
        b = self.conv.bias.detach().contiguous()
        y = torch.empty(x.shape[0], w.shape[0], x.shape[2], x.shape[3], dtype=x.dtype)
        _pointwise(x.numpy(), w.numpy(), b.numpy(), y.numpy())
        return y
