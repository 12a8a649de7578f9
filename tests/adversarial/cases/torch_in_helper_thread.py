"""EXPLOIT: torch compute run in a helper thread that forward starts and joins: the dispatch-mode tracer is thread-local and sees nothing
EXPECT: policy: forward ran torch compute ops
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 3

The thread is joined, so nothing escapes the call.
"""

import threading

import torch
import torch.nn as nn


def _work(x, w, alpha, out):
    out.append((x * w).tanh_() * alpha)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: list = []
        t = threading.Thread(target=_work, args=(x, self.weight, self.alpha, out))
        t.start()
        t.join()
        return out[0]
