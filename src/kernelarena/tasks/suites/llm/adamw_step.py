"""One AdamW optimizer step on a parameter tensor (Loshchilov & Hutter's decoupled weight decay).

Optimizer steps are pure memory traffic: per element AdamW reads the parameter, gradient and both
moments and writes three of them back. ``torch.optim.AdamW`` without ``fused=True`` runs about ten
element-wise kernels, each a full pass over memory; a fused kernel (apex ``FusedAdam``, PyTorch's
``fused=True``, DeepSpeed's CPU-Adam for ZeRO-Offload) does one pass. The step returns fresh tensors
``(param, exp_avg, exp_avg_sq)`` instead of updating in place so that the harness can compare them.
``exp_avg_sq`` is a second moment and must stay non-negative, so it is excluded from the input
perturbations (``PERTURB_INPUTS``).
"""

import torch
import torch.nn as nn

CATEGORY = "optimizer"
SOURCE = (
    "AdamW (Loshchilov & Hutter, 2019); fused optimizers: apex FusedAdam, DeepSpeed CPU-Adam (ZeRO-Offload)"
)
PERTURB_INPUTS = [0, 1, 2]  # param, grad, exp_avg; never exp_avg_sq (must stay >= 0)


class Model(nn.Module):
    """AdamW update at step ``step`` (1-based, used for bias correction), as torch.optim.AdamW."""

    def __init__(self, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, step: int):
        super().__init__()
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay, self.step = weight_decay, step

    def forward(
        self, param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        exp_avg = self.beta1 * exp_avg + (1.0 - self.beta1) * grad
        exp_avg_sq = self.beta2 * exp_avg_sq + (1.0 - self.beta2) * grad * grad
        bias_c1 = 1.0 - self.beta1**self.step
        bias_c2 = 1.0 - self.beta2**self.step
        denom = (exp_avg_sq / bias_c2).sqrt() + self.eps
        new_param = param * (1.0 - self.lr * self.weight_decay) - (self.lr / bias_c1) * exp_avg / denom
        return new_param, exp_avg, exp_avg_sq


rows = 2048
cols = 1024

# First entry: the headline shape (a 2048x1024 weight, 2M parameters).
VARIANTS = [
    {"rows": 2048, "cols": 1024},
    {"rows": 1, "cols": 1001},  # a bias vector
    {"rows": 37, "cols": 4099},  # no multiple of any vector width
    {"rows": 4096, "cols": 512},
]


def get_inputs():
    # Weights at LLM-like scale so that one step changes them visibly (median |step| ~ 3% of |param|, and the
    # weight-decay term lr * wd * param alone is 10x the relative tolerance).
    param = torch.randn(rows, cols) * 0.05
    grad = torch.randn(rows, cols) * 3.0
    exp_avg = torch.randn(rows, cols) * 0.5
    exp_avg_sq = exp_avg.square() * torch.rand(rows, cols) * 4.0 + (torch.randn(rows, cols) * 0.3).square()
    return [param, grad, exp_avg, exp_avg_sq]


def get_init_inputs():
    return [1e-2, 0.9, 0.999, 1e-8, 0.1, 7]


def flops(param, grad, exp_avg, exp_avg_sq):
    return 16.0 * param.numel()


def bytes_moved(param, grad, exp_avg, exp_avg_sq):
    return 4.0 * 7 * param.numel()  # read 4 tensors, write 3
