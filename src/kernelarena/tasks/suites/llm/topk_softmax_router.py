"""MoE top-k softmax router: which experts each token goes to, and with what weight.

For ``x`` [tokens, hidden] and the router's Linear weight ``weight`` [experts, hidden]:

    logits = x @ weight^T                       (computed in float64, see below)
    probs  = softmax(logits, dim=-1)
    topk_weights, topk_ids = probs.topk(k)      (sorted by descending probability)
    topk_weights /= topk_weights.sum(-1)        (renormalized over the chosen k, Mixtral-style)

Returns ``(topk_weights [tokens, k] float32, topk_ids [tokens, k] int64)``. Every MoE layer
(Mixtral, DeepSeek-MoE, Qwen-MoE) runs this before dispatch; a fused kernel computes the skinny
router GEMM and does softmax + top-k + renormalization in the GEMM's epilogue while the row of
``experts`` logits is still in registers, instead of writing logits and probabilities out.

Near-ties: ``topk_ids`` is discrete, and float32 logits of two different summation orders differ
by ~1e-6 relative, which flips the choice for roughly one token in 10^5 -- enough to make a
correct float32 kernel fail at random. So, as production routers run the router in higher
precision than the experts (Switch Transformer's "selective precision", fp32 routers in bf16
Mixtral/DeepSeek), this router computes its logits in float64 from the float32 inputs. Its
selection is then well defined: two float64 evaluations differ by ~1e-15 relative, and a tie at
that level has probability ~1e-10 per run. A kernel may compute float32 logits and re-evaluate in
float64 only the experts whose float32 logit lies within a rigorous rounding bound of the k-th
(this is what the reference solution does). Because the reference is float64 anyway,
``FLOAT64_REFERENCE`` stays at its default. Softmax is monotone, so ranking logits equals ranking
probabilities, and the renormalized weights equal a softmax over the k selected logits.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CATEGORY = "moe"
SOURCE = "Switch Transformer (Fedus et al., 2021); Mixtral (Jiang et al., 2024) top-k softmax routing"


class Model(nn.Module):
    """Softmax router with top-k selection and renormalized weights."""

    def __init__(self, hidden: int, num_experts: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.weight = nn.Parameter(torch.empty(num_experts, hidden))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default init

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = F.linear(x.double(), self.weight.double())  # float64 router: selection is well defined
        probs = torch.softmax(logits, dim=-1)
        topk_weights, topk_ids = probs.topk(self.top_k, dim=-1)
        topk_weights = topk_weights / topk_weights.sum(dim=-1, keepdim=True)
        return topk_weights.to(x.dtype), topk_ids


tokens = 4096
hidden = 2048
num_experts = 64
top_k = 2

VARIANTS = [
    {"tokens": 4096, "hidden": 2048, "num_experts": 64, "top_k": 2},  # prefill, Mixtral-like top-2
    {"tokens": 1024, "hidden": 2048, "num_experts": 64, "top_k": 8},  # fine-grained: 8 of 64
    {"tokens": 1, "hidden": 4096, "num_experts": 8, "top_k": 2},  # decode, batch 1, Mixtral-8x7B
    {"tokens": 37, "hidden": 1001, "num_experts": 60, "top_k": 4},  # odd sizes (Qwen1.5-MoE: 60 experts)
    {"tokens": 300, "hidden": 640, "num_experts": 160, "top_k": 6},  # many experts (DeepSeek-V2 style)
]


def get_inputs():
    return [torch.randn(tokens, hidden) * 3.0]


def get_init_inputs():
    return [hidden, num_experts, top_k]


def flops(x):
    t, d = x.shape
    return float(2 * t * d * num_experts + 5 * t * num_experts)  # router GEMM + softmax/top-k


def bytes_moved(x):
    t, d = x.shape
    # read x and the router weight once; write k weights (fp32) and k ids (int64) per token
    return float(x.numel() * 4 + num_experts * d * 4 + t * top_k * (4 + 8))
