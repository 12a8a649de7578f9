"""Weak task (KernelBench's ReLU on [0,1) inputs): the identity (passthrough) is a correct answer."""

import torch
import torch.nn as nn

n = 4096


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)


def get_inputs():
    return [torch.rand(n)]


def get_init_inputs():
    return []
