"""Fused LoRA linear template on the shared GEMM core ``karena/gemm.h``.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does); the space is the GEMM
core's cache blocks, shared with gemm_fp32 (``_common.GEMM_SPACE``).
"""

from kernelarena.search.templates._common import GEMM_DEFAULT as DEFAULT
from kernelarena.search.templates._common import GEMM_SPACE as SPACE
from kernelarena.search.templates._common import gemm_constraints as constraints
from kernelarena.search.templates._common import gemm_features as features
from kernelarena.search.templates._common import gemm_lite as lite_space
from kernelarena.search.templates._common import gemm_render

TASK = "fused_lora_linear"
__all__ = ["DEFAULT", "SPACE", "TASK", "constraints", "features", "lite_space", "render"]

_DOC = """Fused LoRA linear (C/OpenMP): the low-rank path rides inside the base GEMM's tiles (LoRAFusion).

One packed SGEMM (the shared ``karena/gemm.h`` core: Goto/BLIS loop nest, 12x32 AVX-512, 6x16
AVX2 or 6x8 generic register tile) runs over a K dimension extended by the rank:
``y = [x | t] [W | lora_B]^T`` with ``t = scale * x lora_A^T``. ``t`` is accumulated while each row
of ``x`` is being packed for the first K pass, so ``x`` is read once for both products and the output
is written once, where eager PyTorch runs three GEMMs, a scale and an add. The rank columns are
folded into the last K block rather than costing one more pass over the output. Threads split the
output columns. The base GEMM is the bulk of the work and runs at about MKL's speed, so the removed
passes are the gain."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
@GEMM_KNOBS@
#include "karena/gemm.h"

/* ---------------- LoRA linear: y = x W^T + scale (x A^T) B^T as ONE GEMM over K + r --------------
   The K dimension is extended by the r LoRA columns: A-side [x | t] with t = scale x A^T, B-side
   [W | lora_B]. t is accumulated while x is packed (x is read once per pass), so the extra columns
   ride in the same micro-kernel tiles and the output is written once. */
void lora_linear_f32(const float* x, const float* W, const float* A, const float* B, float* y,
                     long M, long K, long N, long r, float scale) {
  float* At = (float*)malloc(sizeof(float) * (K * r > 0 ? K * r : 1));  /* scale * A^T, [K, r] */
  #pragma omp parallel
  {
    #pragma omp for schedule(static)
    for (long k0 = 0; k0 < K; k0 += 64)        /* 64 k per block: reads stay on A's rows */
      for (long j = 0; j < r; ++j)
        for (long k = k0; k < K && k < k0 + 64; ++k) At[k * r + j] = scale * A[j * K + k];
    long lo, hi;
    kg_split_cols(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    if (lo < hi) {
      float* t = (float*)calloc((size_t)(M * r > 0 ? M * r : 1), sizeof(float));
      kg_lowrank lr = {At, NULL, r, K, 1, t, 0};
      kg_operand ox = {x, K, 1, K, t, r, 1};
      kg_operand ow = {W, K, 1, K, B, r, 1};
      kg_gemm_thread(M, lo, hi, K + r, &ox, &ow, y, N, &lr, NULL, NULL);
      free(t);
    }
  }
  free(At);
}
"""

_LIB = load_library(
    _SRC, flags=FLAGS, functions={"lora_linear_f32": (None, ["ptr"] * 5 + ["long"] * 4 + ["float"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.empty(out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.detach().contiguous()
        a = self.lora_A.detach().contiguous()
        b = self.lora_B.detach().contiguous()
        out_f, in_f = w.shape
        x2 = x.contiguous().view(-1, in_f)
        y = torch.empty(*x.shape[:-1], out_f, dtype=x.dtype)
        _LIB.lora_linear_f32(
            x2.data_ptr(), w.data_ptr(), a.data_ptr(), b.data_ptr(), y.data_ptr(),
            x2.shape[0], in_f, out_f, a.shape[0], self.scale,
        )  # fmt: skip
        return y
'''


def render(config: dict) -> str:
    return gemm_render(TASK, _SOLUTION, config, _DOC)
