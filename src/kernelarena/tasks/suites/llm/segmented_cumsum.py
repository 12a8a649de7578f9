"""Segmented cumulative sum over rows: the running sum restarts at every segment boundary.

Packed-sequence training and serving concatenate variable-length sequences into one tensor with a
segment id per row (cu_seqlens, in FlashAttention's varlen API). Per-sequence prefix sums over such
packed tensors appear in position ids, cumulative state for linear-attention / SSM chunking and
MoE token offsets. ``segment_ids`` is int64 [n], sorted (non-decreasing) with arbitrary gaps between
id values; runs of equal ids are segments of varied lengths. An eager implementation splits the
tensor into segments and calls ``cumsum`` on each; a scan kernel does one pass, parallel over row
blocks with the carry into each block recomputed from its segment's start.
"""

import torch
import torch.nn as nn

CATEGORY = "scan"
SOURCE = "segmented scan (Blelloch, 1990); packed variable-length batches (FlashAttention varlen)"


class Model(nn.Module):
    """values [n, d], sorted segment_ids [n] -> out[i] = sum of values[j] for j <= i in i's segment."""

    def __init__(self):
        super().__init__()

    def forward(self, values: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        _, counts = torch.unique_consecutive(segment_ids, return_counts=True)
        pieces = [piece.cumsum(dim=0) for piece in values.split(counts.tolist(), dim=0)]
        return torch.cat(pieces, dim=0)


n_rows = 16384
dim = 256
max_seg_len = 2048

# First entry: the headline shape (16k packed tokens with 256 features, segments of 1 .. 2048 rows).
VARIANTS = [
    {"n_rows": 16384, "dim": 256, "max_seg_len": 2048},
    {"n_rows": 2, "dim": 4096, "max_seg_len": 2},  # two rows, one wide segment
    {"n_rows": 1001, "dim": 37, "max_seg_len": 3},  # many tiny segments, odd width
    {"n_rows": 5000, "dim": 100, "max_seg_len": 100000},  # long segments (usually one for all rows)
]


def get_inputs():
    values = torch.randn(n_rows, dim) * 3.0
    lengths = torch.randint(1, max_seg_len + 1, (n_rows,))
    lengths[0] = lengths[0].clamp(min=min(2, max_seg_len))  # at least one real running sum per input
    starts = torch.zeros(n_rows, dtype=torch.bool)
    starts[lengths.cumsum(0)[lengths.cumsum(0) < n_rows]] = True  # segment starts at these rows
    gaps = torch.randint(1, 4, (n_rows,)) * starts  # ids grow by 1..3 at each new segment
    segment_ids = 5 + gaps.cumsum(0)
    return [values, segment_ids.to(torch.int64)]


def get_init_inputs():
    return []


def flops(values, segment_ids):
    return 1.0 * values.numel()


def bytes_moved(values, segment_ids):
    return 4.0 * 2 * values.numel() + 8.0 * segment_ids.numel()
