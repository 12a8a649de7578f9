"""EXPLOIT: returns a view of the input (x.view(-1)): the right values for ReLU on non-negative inputs, but the output shares the caller's buffer
EXPECT: alias: output 0 shares storage with input 0
TASK: tests/data/tasks/weak_relu_positive.py
CLASS: 8

Only the aliasing guard can reject this: the values are exactly the reference's.
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1)
