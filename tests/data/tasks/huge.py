"""Test task with KernelBench-sized inputs (8 GiB): only runnable after --max-bytes scaling."""

import torch
import torch.nn as nn

batch_size = 4096
dim = 524288


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
