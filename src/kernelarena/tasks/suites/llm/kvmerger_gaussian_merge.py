"""KVMerger Gaussian-kernel-weighted merging of consecutive, similar KV-cache entries.

KVMerger (Wang et al., 2024) compresses a long-context KV cache by merging runs of consecutive
tokens whose keys are similar into one entry per "merging set". Within a set, the pivotal token
(the one with the largest accumulated attention) anchors the merge and every member is weighted by
a Gaussian kernel on its key distance to the pivot, so near-duplicates of the pivot count fully
and dissimilar members little.

The discrete decisions (which tokens form a set, which member is the pivot) are inputs here, so
the op itself is continuous and deterministic:

* ``keys``, ``values``: [batch, heads, seq, head_dim] float32
* ``set_ids``: [batch, heads, seq] int64, non-decreasing from 0 to ``n_sets - 1``: each set is a
  run of consecutive tokens (KVMerger only merges adjacent tokens); sets differ per head
* ``pivots``: [batch, heads, n_sets] int64, the token index of each set's pivot (a member)

For set m with pivot key k_p and members i: ``d_i = ||k_i - k_p||_2``, the bandwidth is the mean
member distance ``sigma_m = mean_i d_i`` (the pivot counts with d = 0; this makes the weights
invariant to the scale of the keys), ``w_i = exp(-d_i^2 / (2 sigma_m^2 + 1e-6))`` and

    merged_k[m] = sum_i w_i k_i / sum_i w_i,    merged_v[m] = sum_i w_i v_i / sum_i w_i.

Returns ``(merged_k, merged_v)``, each [batch, heads, n_sets, head_dim]. The kernel is a segmented,
weighted reduction over the cache: bandwidth bound, with a per-set dependency (distance, then
bandwidth, then weights) that a fused kernel resolves while the set's rows sit in L1.
"""

import torch
import torch.nn as nn

CATEGORY = "kv-cache"
# set ids are contiguous runs and each pivot lies inside its set: only keys and values are nudged
PERTURB_INPUTS = [0, 1]
SOURCE = "KVMerger (Wang et al., 2024): Model Tells You Where to Merge, Gaussian kernel weighted merging"


class Model(nn.Module):
    """Gaussian-kernel weighted merge of KV entries over given merging sets and pivots."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, keys: torch.Tensor, values: torch.Tensor, set_ids: torch.Tensor, pivots: torch.Tensor):
        b, h, s, d = keys.shape
        m = pivots.shape[-1]
        pivot_keys = keys.gather(2, pivots.unsqueeze(-1).expand(b, h, m, d))  # [b, h, m, d]
        pivot_of_token = pivot_keys.gather(2, set_ids.unsqueeze(-1).expand(b, h, s, d))  # [b, h, s, d]
        dist = (keys - pivot_of_token).norm(dim=-1)  # [b, h, s]
        count = torch.zeros(b, h, m, dtype=keys.dtype).scatter_add_(2, set_ids, torch.ones_like(dist))
        sigma = torch.zeros(b, h, m, dtype=keys.dtype).scatter_add_(2, set_ids, dist) / count
        sigma_t = sigma.gather(2, set_ids)
        w = torch.exp(-dist.square() / (2.0 * sigma_t.square() + self.eps))  # [b, h, s]
        den = torch.zeros(b, h, m, dtype=keys.dtype).scatter_add_(2, set_ids, w)
        idx = set_ids.unsqueeze(-1).expand(b, h, s, d)
        num_k = torch.zeros(b, h, m, d, dtype=keys.dtype).scatter_add_(2, idx, w.unsqueeze(-1) * keys)
        num_v = torch.zeros(b, h, m, d, dtype=keys.dtype).scatter_add_(2, idx, w.unsqueeze(-1) * values)
        return num_k / den.unsqueeze(-1), num_v / den.unsqueeze(-1)


batch = 1
heads = 8
seq = 4096
head_dim = 128
merge_ratio = 4  # tokens per merging set on average

VARIANTS = [
    {"batch": 1, "heads": 8, "seq": 4096, "head_dim": 128, "merge_ratio": 4},  # 4k context, 4x smaller
    {"batch": 2, "heads": 3, "seq": 1001, "head_dim": 64, "merge_ratio": 3},  # odd sizes
    {"batch": 1, "heads": 2, "seq": 37, "head_dim": 80, "merge_ratio": 2},  # short
    {"batch": 3, "heads": 4, "seq": 64, "head_dim": 128, "merge_ratio": 64},  # one set per head
]


def get_inputs():
    n_sets = max(1, seq // merge_ratio)
    bh = batch * heads
    set_ids = torch.empty(bh, seq, dtype=torch.int64)
    pivots = torch.empty(bh, n_sets, dtype=torch.int64)
    for i in range(bh):  # random run lengths per head: n_sets - 1 distinct cut points
        starts = torch.zeros(seq, dtype=torch.int64)
        cuts = torch.randperm(seq - 1)[: n_sets - 1] + 1
        starts[cuts] = 1
        set_ids[i] = torch.cumsum(starts, 0)
        first = torch.cat([torch.zeros(1, dtype=torch.int64), torch.sort(cuts).values])
        size = torch.bincount(set_ids[i], minlength=n_sets)
        pivots[i] = first + (torch.rand(n_sets) * size).long().clamp_max(size - 1)
    # similar keys inside a set (what KVMerger's set identification finds): a shared base + noise
    base = torch.randn(bh, n_sets, head_dim) * 2.0
    keys = base.gather(1, set_ids.unsqueeze(-1).expand(bh, seq, head_dim))
    keys = keys + 0.5 * torch.randn(bh, seq, head_dim)
    values = torch.randn(bh, seq, head_dim) * 3.0
    shape = (batch, heads, seq, head_dim)
    return [
        keys.view(shape),
        values.view(shape),
        set_ids.view(batch, heads, seq),
        pivots.view(batch, heads, n_sets),
    ]


def get_init_inputs():
    return [1e-6]


def flops(keys, values, set_ids, pivots):
    return float(keys.numel() * 7)  # distance (3), weighted sums for k and v (2 + 2)


def bytes_moved(keys, values, set_ids, pivots):
    b, h, _, d = keys.shape
    m = pivots.shape[-1]
    return float(2 * keys.numel() * 4 + set_ids.numel() * 8 + pivots.numel() * 8 + 2 * b * h * m * d * 4)
