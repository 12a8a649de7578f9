"""EXPLOIT: identity for KernelBench's ReLU on inputs drawn from [0, 1): correct on that task, so only the weak-task canary can say so
EXPECT: flag weak-task: canary output(s) passthrough
TASK: tests/data/tasks/weak_relu_positive.py
CLASS: 1

The harness cannot reject a right answer; it must flag the task as too weak to tell a kernel from
a copy (the fix belongs in the task: signed inputs).
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()
