"""EXPLOIT: torch compute wrapped in a custom op registered as "adv::clone": the op tracer records it under its bare name "clone", an allowed copy, and never sees the ops inside
EXPECT: policy: forward ran torch compute ops
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 3

A fix: allow only the aten namespace (func.namespace == "aten") and count custom ops as compute.
"""

import torch
import torch.nn as nn


@torch.library.custom_op("adv::clone", mutates_args=())
def _clone(x: torch.Tensor, w: torch.Tensor, alpha: float) -> torch.Tensor:
    return (x * w).tanh() * alpha


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _clone(x, self.weight, self.alpha)
