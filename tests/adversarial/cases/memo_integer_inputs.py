"""EXPLOIT: per-instance memo keyed by the input buffer, on a task whose only input is integer token ids
EXPECT: a timed call
TASK: tests/adversarial/tasks/int_histogram.py
CLASS: 10
EXPECT_STAGE: bench

Regression case (was a GAP: integer inputs were never nudged, so timed calls on the three rotated
sets always saw the same buffers and contents). Integer inputs are now nudged between timed calls
by copying one element's value onto another, which keeps every id in the input's own domain; the
memo replays a stale histogram and the sampled check of timed calls catches it.
"""

import numba
import torch
import torch.nn as nn


@numba.njit(cache=True)
def _hist(tokens, out):
    for i in range(tokens.shape[0]):
        out[tokens[i]] += 1


class ModelNew(nn.Module):
    def __init__(self, n_bins: int):
        super().__init__()
        self.n_bins = n_bins
        self._memo: dict = {}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        key = (tokens.data_ptr(), tuple(tokens.shape))
        if key in self._memo:
            return self._memo[key].clone()
        out = torch.zeros(self.n_bins, dtype=torch.int64)
        _hist(tokens.contiguous().numpy(), out.numpy())
        self._memo[key] = out
        return out.clone()
