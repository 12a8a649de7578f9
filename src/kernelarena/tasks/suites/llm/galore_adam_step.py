"""One GaLore-Adam step: Adam in a low-rank gradient subspace, update projected back to the weight.

GaLore (Zhao et al., 2024) trains full-rank weights with optimizer state the size of a rank-``r``
projection: the gradient ``G [m, n]`` is projected with ``P [m, r]`` (the top singular vectors of a
recent gradient) to ``R = P^T G [r, n]``, Adam's moments live in that ``[r, n]`` space, and the
normalised update ``N`` is projected back, ``W <- W (1 - lr wd) - lr * alpha * P N``. Per step that
is two skinny GEMMs around an element-wise Adam; eager PyTorch materialises R, N and P N in memory,
while a fused kernel applies Adam in the epilogue of the first GEMM and the weight update in the
epilogue of the second. Returns fresh ``(weight, exp_avg, exp_avg_sq)``. ``exp_avg_sq`` must stay
non-negative, so it is excluded from the input perturbations.
"""

import torch
import torch.nn as nn

CATEGORY = "optimizer"
SOURCE = "GaLore (Zhao et al., ICML 2024)"
PERTURB_INPUTS = [0, 1, 2, 3]  # weight, grad, proj, exp_avg; never exp_avg_sq (must stay >= 0)


class Model(nn.Module):
    """GaLore-projected AdamW step at step ``step`` (1-based) with GaLore's update scale ``alpha``."""

    def __init__(
        self, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, step: int, alpha: float
    ):
        super().__init__()
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay, self.step, self.alpha = weight_decay, step, alpha

    def forward(
        self,
        weight: torch.Tensor,
        grad: torch.Tensor,
        proj: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low_rank_grad = proj.t() @ grad  # [r, n]
        exp_avg = self.beta1 * exp_avg + (1.0 - self.beta1) * low_rank_grad
        exp_avg_sq = self.beta2 * exp_avg_sq + (1.0 - self.beta2) * low_rank_grad.square()
        bias_c1 = 1.0 - self.beta1**self.step
        bias_c2 = 1.0 - self.beta2**self.step
        norm_update = (exp_avg / bias_c1) / ((exp_avg_sq / bias_c2).sqrt() + self.eps)  # [r, n]
        full_update = proj @ norm_update  # [m, n]
        new_weight = weight * (1.0 - self.lr * self.weight_decay) - (self.lr * self.alpha) * full_update
        return new_weight, exp_avg, exp_avg_sq


m = 2048
n = 2048
r = 128

# First entry: the headline shape (a 2048x2048 weight with a rank-128 projection).
VARIANTS = [
    {"m": 2048, "n": 2048, "r": 128},
    {"m": 1001, "n": 37, "r": 16},  # odd sizes, n below one tile
    {"m": 64, "n": 4099, "r": 5},
    {"m": 512, "n": 1536, "r": 256},  # rank beyond one K block
]


def get_inputs():
    weight = torch.randn(m, n) * 0.02
    grad = torch.randn(m, n) * 3.0
    proj = torch.linalg.qr(torch.randn(m, r)).Q.contiguous()  # orthonormal columns, as from an SVD
    exp_avg = torch.randn(r, n) * 2.0
    exp_avg_sq = exp_avg.square() * torch.rand(r, n) * 4.0 + (torch.randn(r, n) * 2.0).square()
    return [weight, grad, proj, exp_avg, exp_avg_sq]


def get_init_inputs():
    return [1e-2, 0.9, 0.999, 1e-8, 0.1, 7, 0.25]


def flops(weight, grad, proj, exp_avg, exp_avg_sq):
    mm, nn_ = grad.shape
    rr = proj.shape[1]
    return 4.0 * mm * nn_ * rr + 16.0 * rr * nn_ + 3.0 * mm * nn_


def bytes_moved(weight, grad, proj, exp_avg, exp_avg_sq):
    mm, nn_ = grad.shape
    rr = proj.shape[1]
    return 4.0 * (3 * mm * nn_ + mm * rr + 4 * rr * nn_)
