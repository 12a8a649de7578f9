"""One FRUGAL optimizer step: Adam on a row subspace with state, signSGD on the rest without state.

FRUGAL (Zmushko et al., 2025) cuts optimizer memory by keeping Adam state only for a subspace of
the parameters (here: a chosen set of rows, i.e. a block-wise subspace) and updating every other
coordinate with a state-free optimizer, signSGD (``lr_free * sign(grad)``). The moments are stored
compactly, one row of state per selected row: ``exp_avg, exp_avg_sq [k, cols]`` belong to the rows
``rows_sel`` (int64 [k], sorted, distinct). Weight decay (decoupled) applies to all rows. An eager
implementation gathers the selected gradient rows, runs Adam on them, scatters the update back into
a signSGD update of the whole tensor; a fused kernel makes one pass over the parameter. The
gradient is drawn bounded away from 0 so the sign decisions are robust; ``exp_avg_sq`` must stay
non-negative and is excluded from the perturbations. Returns fresh ``(param, exp_avg, exp_avg_sq)``.
"""

import torch
import torch.nn as nn

CATEGORY = "optimizer"
SOURCE = "FRUGAL (Zmushko et al., ICML 2025)"
PERTURB_INPUTS = [0, 1, 2]  # param, grad, exp_avg; never exp_avg_sq (must stay >= 0)


class Model(nn.Module):
    """Block-wise FRUGAL step: AdamW (lr) on the selected rows, signSGD (lr_free) elsewhere."""

    def __init__(
        self,
        lr: float,
        lr_free: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        step: int,
    ):
        super().__init__()
        self.lr, self.lr_free, self.beta1, self.beta2, self.eps = lr, lr_free, beta1, beta2, eps
        self.weight_decay, self.step = weight_decay, step

    def forward(
        self,
        param: torch.Tensor,
        grad: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
        rows_sel: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g_sel = grad[rows_sel]  # [k, cols]
        exp_avg = self.beta1 * exp_avg + (1.0 - self.beta1) * g_sel
        exp_avg_sq = self.beta2 * exp_avg_sq + (1.0 - self.beta2) * g_sel.square()
        bias_c1 = 1.0 - self.beta1**self.step
        bias_c2 = 1.0 - self.beta2**self.step
        adam_update = (exp_avg / bias_c1) / ((exp_avg_sq / bias_c2).sqrt() + self.eps)
        update = self.lr_free * torch.sign(grad)  # state-free part
        update[rows_sel] = self.lr * adam_update  # state-full subspace
        new_param = param * (1.0 - self.lr * self.weight_decay) - update
        return new_param, exp_avg, exp_avg_sq


rows = 2048
cols = 2048
density = 4  # one row in `density` is in the Adam subspace (FRUGAL's rho = 0.25)

# First entry: the headline shape (a 2048x2048 weight, a quarter of its rows with Adam state).
VARIANTS = [
    {"rows": 2048, "cols": 2048, "density": 4},
    {"rows": 1, "cols": 1001, "density": 1},  # a bias vector, all in the subspace
    {"rows": 37, "cols": 4099, "density": 3},
    {"rows": 1000, "cols": 333, "density": 10},
]


def get_inputs():
    k = max(1, rows // density)
    rows_sel = torch.randperm(rows)[:k].sort().values  # a random block subspace, as FRUGAL re-draws it
    param = torch.randn(rows, cols) * 0.05
    grad = torch.randn(rows, cols) * 3.0
    grad = grad + 0.01 * torch.where(grad >= 0, 1.0, -1.0)  # |grad| >= 0.01: no sign decision at 0
    exp_avg = torch.randn(k, cols) * 0.5
    exp_avg_sq = exp_avg.square() * torch.rand(k, cols) * 4.0 + (torch.randn(k, cols) * 0.3).square()
    return [param, grad, exp_avg, exp_avg_sq, rows_sel]


def get_init_inputs():
    return [1e-2, 1e-3, 0.9, 0.999, 1e-8, 0.1, 7]


def flops(param, grad, exp_avg, exp_avg_sq, rows_sel):
    return 3.0 * param.numel() + 16.0 * exp_avg.numel()


def bytes_moved(param, grad, exp_avg, exp_avg_sq, rows_sel):
    return 4.0 * (3 * param.numel() + 4 * exp_avg.numel()) + 8.0 * rows_sel.numel()
