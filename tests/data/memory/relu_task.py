"""ReLU on one large float32 matrix: the memory tests scale it with --max-bytes (rows x dim x 4 bytes)."""

import torch
import torch.nn as nn

rows = 4096
dim = 32768  # 512 MiB of float32 input at the default size


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


def get_inputs():
    return [torch.randn(rows, dim)]


def get_init_inputs():
    return []


VARIANTS = [{"rows": rows, "dim": dim}]
