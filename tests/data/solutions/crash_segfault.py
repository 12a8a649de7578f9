"""Crashes: dereferences a null pointer in forward (the harness must survive and say SIGSEGV)."""

import ctypes

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        ctypes.string_at(0)  # segfault
        return x
