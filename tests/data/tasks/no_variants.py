"""Test task without VARIANTS: the harness derives extra shapes from the size globals."""

import torch
import torch.nn as nn

batch_size = 16
dim = 64
hidden = 2 * dim  # derived global: must follow an override of dim


class Model(nn.Module):
    def forward(self, x):
        return x.reshape(batch_size, hidden // 2) * 2.0


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
