"""Nearest-centroid assignment of attention keys (k-means assignment step over a KV cache).

Squeezed Attention (Hooper et al., 2024) and LouisKV cluster the keys of a long context offline
and, at run time, compare a query with the centroids first to decide which clusters' keys to
load; building and refreshing that index needs every key assigned to its nearest centroid. For
``keys`` [n, head_dim] and ``centroids`` [clusters, head_dim]:

    ids[i]  = argmin_c ||keys[i] - centroids[c]||^2          int64 [n]
    dist[i] = ||keys[i] - centroids[ids[i]]||^2              float32 [n] (squared L2)

Returns ``(ids, dist)``. The work is one [n, head_dim] x [head_dim, clusters] GEMM whose result is
only reduced (argmin per row): a fused kernel keeps each tile of distances in registers and
carries a running minimum instead of writing the [n, clusters] matrix, then computes the chosen
distance directly (no ``|k|^2 - 2 k.c + |c|^2`` cancellation).

Near-ties: ``ids`` is discrete, so the inputs are built with a wide margin. Keys are generated as
centroid + small noise (noise rms 0.5 per coordinate vs centroid spread 3): the own centroid is at
squared distance ~32 s^2 while every other one is at >~1300 s^2 (s = ``scale``), far beyond any
float32 rounding (~1e-3 at these magnitudes), so float32 kernels and the float64 reference agree.
Independent per-tensor perturbation by the harness (x32 outliers in a few key or centroid
coordinates) would displace keys by more than the inter-centroid distance and create genuine
near-ties among the other centroids, so ``PERTURB_INPUTS = []``; the ``scale`` of the inputs
varies across ``VARIANTS`` instead.
"""

import torch
import torch.nn as nn

CATEGORY = "kv-cache"
SOURCE = "Squeezed Attention (Hooper et al., 2024); LouisKV (2025): semantic-cluster KV retrieval"
PERTURB_INPUTS: list[int] = []  # see the docstring: perturbation would create genuine near-ties


class Model(nn.Module):
    """Argmin squared-L2 centroid per key, and that squared distance."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, keys: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k2 = keys.pow(2).sum(dim=-1, keepdim=True)
        c2 = centroids.pow(2).sum(dim=-1)
        d2 = k2 - 2.0 * (keys @ centroids.t()) + c2  # [n, clusters]
        ids = d2.argmin(dim=-1)
        dist = (keys - centroids[ids]).pow(2).sum(dim=-1)
        return ids, dist


n_keys = 4096
clusters = 1024
head_dim = 128
scale = 1.0

VARIANTS = [
    {"n_keys": 4096, "clusters": 1024, "head_dim": 128, "scale": 1.0},  # 4k keys of one head
    {"n_keys": 1, "clusters": 1024, "head_dim": 128, "scale": 1.0},  # assign one new decode key
    {"n_keys": 1001, "clusters": 37, "head_dim": 80, "scale": 8.0},  # odd sizes, large values
    {"n_keys": 333, "clusters": 300, "head_dim": 64, "scale": 0.125},  # small values
    {"n_keys": 4099, "clusters": 130, "head_dim": 96, "scale": 3.0},  # clusters just past a tile
]


def get_inputs():
    centroids = torch.randn(clusters, head_dim) * (3.0 * scale)
    assign = torch.randint(0, clusters, (n_keys,))
    keys = centroids[assign] + torch.randn(n_keys, head_dim) * (0.5 * scale)
    return [keys, centroids]


def get_init_inputs():
    return []


def flops(keys, centroids):
    n, d = keys.shape
    return float(2 * n * centroids.shape[0] * d + 3 * n * d)  # distance GEMM + final distance


def bytes_moved(keys, centroids):
    n = keys.shape[0]
    return float((keys.numel() + centroids.numel()) * 4 + n * (8 + 4))
