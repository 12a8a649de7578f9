"""EXPLOIT: the computation is done by numpy's vectorised library routines (np.tanh, np.multiply) instead of the solution's own kernel
EXPECT: policy
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 3
GAP: library compute outside torch (numpy ufuncs, BLAS through numpy or ctypes) is invisible to both the ATen tracer and the static scan, although the policy says every computation must be the solution's own kernel (C, numba or Triton)

Whether numpy counts as "the solution's own kernel" is a policy decision; for a GEMM task the same
pattern hands the work to OpenBLAS.
"""

import numpy as np
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xn = x.contiguous().numpy()
        y = np.tanh(np.multiply(xn, self.weight.detach().numpy()))
        y *= np.float32(self.alpha)
        return torch.from_numpy(y)
