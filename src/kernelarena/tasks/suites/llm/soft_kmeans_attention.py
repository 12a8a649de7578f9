"""Differentiable k-means weight clustering: soft assignment of every weight to the centroids.

DKM / eDKM (Cho et al., 2022; 2024) compress LLM weights to ``log2(K)`` bits by clustering them
during fine-tuning. The forward pass replaces each weight ``w`` by its attention-weighted centroid:
``a_k = softmax_k(-(w - c_k)^2 / tau)``, output ``sum_k a_k c_k``. Eager PyTorch materialises the
``[N, K]`` distance and attention matrices (for a 1M-weight tensor and K = 16, 64 MB each);
eDKM's point is to avoid that memory. A fused kernel keeps the K centroids in registers and does an
online softmax per weight: one read of ``w``, one write of the output, compute-bound on the ``exp``.
``centroids`` is a parameter (learned in DKM) of shape [K].
"""

import torch
import torch.nn as nn

CATEGORY = "clustering"
SOURCE = "eDKM (Cho et al., 2024); DKM (Cho et al., ICLR 2022)"


class Model(nn.Module):
    """Soft-clustered weights: softmax over K centroids of -(w - c)^2 / tau, then the weighted centroid."""

    def __init__(self, n_clusters: int, tau: float):
        super().__init__()
        self.centroids = nn.Parameter(torch.linspace(-4.0, 4.0, n_clusters) + 0.05 * torch.randn(n_clusters))
        self.tau = tau

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        dist = (w.reshape(-1, 1) - self.centroids.reshape(1, -1)).square()  # [N, K]
        attn = torch.softmax(-dist / self.tau, dim=-1)
        return (attn @ self.centroids).reshape(w.shape)


rows = 512
cols = 512
n_clusters = 16

# First entry: the headline shape (a 512x512 weight block, 262k weights, 16 centroids = 4-bit).
VARIANTS = [
    {"rows": 512, "cols": 512, "n_clusters": 16},
    {"rows": 1, "cols": 1001, "n_clusters": 8},  # 3-bit
    {"rows": 37, "cols": 333, "n_clusters": 3},  # odd K
    {"rows": 512, "cols": 2048, "n_clusters": 64},  # 6-bit
]


def get_inputs():
    return [torch.randn(rows, cols) * 2.0]


def get_init_inputs():
    return [n_clusters, 0.3]


def flops(w):
    return 8.0 * w.numel() * n_clusters  # distance, scale, exp, normalise, weighted sum


def bytes_moved(w):
    return 4.0 * (2 * w.numel() + n_clusters)
