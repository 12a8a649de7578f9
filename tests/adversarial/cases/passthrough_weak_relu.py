"""EXPLOIT: identity for KernelBench's ReLU on inputs drawn from [0, 1): correct on the task's own inputs, so before the signed distribution only the weak-task canary could say so
EXPECT: /signed) && outside tolerance
TASK: tests/data/tasks/weak_relu_positive.py
CLASS: 1

Regression case (issue 10): this passed with the flag `weak-task: canary output(s) passthrough`.
The `signed` distribution flips the sign of a random half of the elements (and `outliers` gives
its outliers a random sign), so identity is now wrong on about half of them. The canary flag is
still raised on the as-given case: the task itself stays weak.
"""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()
