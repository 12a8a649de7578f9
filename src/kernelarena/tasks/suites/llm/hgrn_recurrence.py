"""HGRN / MatMul-free LM gated linear recurrence ``h_t = f_t * h_{t-1} + (1 - f_t) * c_t``.

HGRN (Qin et al., 2023) and the MatMul-free language model (Zhu et al., 2024) replace attention with
an element-wise gated linear recurrence: each channel keeps a state that decays with a data-dependent
forget gate ``f_t`` in (0, 1) and absorbs the candidate ``c_t``. The work is tiny, but time steps
are sequential; an eager loop launches a few tiny kernels per step, whereas a scan kernel walks the
time axis once with the states of many channels held in vector registers (channels and batch
entries are independent). ``h0 [batch, dim]`` is the state carried in from the previous chunk.
The gates are inputs produced by a sigmoid, so they are excluded from the input perturbations
(scaling them by 8 would leave (0, 1)).
"""

import torch
import torch.nn as nn

CATEGORY = "scan"
SOURCE = "HGRN (Qin et al., NeurIPS 2023); MatMul-free LM (Zhu et al., 2024)"
PERTURB_INPUTS = [0, 2]  # c and h0; the gates f must stay in (0, 1)


class Model(nn.Module):
    """Sequential reference: c, f [batch, seq, dim], h0 [batch, dim] -> all states h [batch, seq, dim]."""

    def __init__(self):
        super().__init__()

    def forward(self, c: torch.Tensor, f: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        h = h0
        states = []
        for t in range(c.shape[1]):
            h = f[:, t] * h + (1.0 - f[:, t]) * c[:, t]
            states.append(h)
        return torch.stack(states, dim=1)


batch = 4
seq = 1024
dim = 1024

# First entry: the headline shape (4 sequences of 1024 tokens, 1024 channels).
VARIANTS = [
    {"batch": 4, "seq": 1024, "dim": 1024},
    {"batch": 1, "seq": 1, "dim": 2048},  # one decode step
    {"batch": 3, "seq": 333, "dim": 37},  # odd sizes
    {"batch": 2, "seq": 2000, "dim": 1001},  # long: gates near 1 carry state far
]


def get_inputs():
    c = torch.randn(batch, seq, dim) * 3.0
    f = torch.sigmoid(torch.randn(batch, seq, dim) * 2.0 + 2.0)  # mostly 0.7 .. 0.99, as trained HGRN gates
    h0 = torch.randn(batch, dim) * 3.0
    return [c, f, h0]


def get_init_inputs():
    return []


def flops(c, f, h0):
    return 3.0 * c.numel()


def bytes_moved(c, f, h0):
    return 4.0 * (3 * c.numel() + h0.numel())
