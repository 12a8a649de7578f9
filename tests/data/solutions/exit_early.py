"""Exits the worker with os._exit(0) in forward (must be a failure, not a silent pass)."""

import os

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        os._exit(0)
