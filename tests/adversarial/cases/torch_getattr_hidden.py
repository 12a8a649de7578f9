"""EXPLOIT: torch compute hidden from a source scan: the function name is assembled at run time and fetched with getattr
EXPECT: policy: forward ran torch compute ops
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 3
"""

import torch
import torch.nn as nn

_OP = getattr(torch, "".join(["ta", "nh"]))
_MUL = getattr(torch, "m" + "ul")


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MUL(_OP(_MUL(x, self.weight)), self.alpha)
