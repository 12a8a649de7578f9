"""Grouped expert FFN template on the shared GEMM core ``karena/gemm.h``.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does); the space is the GEMM
core's cache blocks, shared with gemm_fp32 (``_common.GEMM_SPACE``).
"""

from kernelarena.search.templates._common import GEMM_DEFAULT as DEFAULT
from kernelarena.search.templates._common import GEMM_SPACE as SPACE
from kernelarena.search.templates._common import gemm_constraints as constraints
from kernelarena.search.templates._common import gemm_features as features
from kernelarena.search.templates._common import gemm_lite as lite_space
from kernelarena.search.templates._common import gemm_render

TASK = "grouped_expert_ffn"
__all__ = ["DEFAULT", "SPACE", "TASK", "constraints", "features", "lite_space", "render"]

_DOC = """Grouped SwiGLU expert FFN (C/OpenMP on the shared ``karena/gemm.h``): two fused phases.

Work items are (expert, slice of 128 output columns), handed out dynamically so skewed expert
loads and empty experts cost nothing extra. Every item runs the shared packed GEMM core (12x32
AVX-512, 6x16 AVX2 or 6x8 generic register tile) on the expert's rows, used in place (no gather):

* phase 1: ``G = X W1^T`` for the slice, then ``X W3^T`` whose epilogue turns each finished tile
  into ``H = silu(G) * U`` (vector exp) while it is in L1; only H is kept, and it is read back by
* phase 2: ``Y = H W2^T`` written straight into the expert's output rows.

Eager PyTorch loops over the experts with three MKL GEMMs and separate SiLU, multiply and copy
passes; the fusion removes those passes, the GEMMs run at about MKL's speed."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
@GEMM_KNOBS@
#include "karena/gemm.h"

#define SL 128 /* output columns per work item: a multiple of every KG_NR */

typedef struct { float* h; long ldh; } swiglu_ctx;

/* acc holds X W3^T for the tile, ctx->h (same rows and columns) holds X W1^T: h = silu(g) * u */
static void swiglu_epilogue(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                            const void* ctx) {
  const swiglu_ctx* e = (const swiglu_ctx*)ctx;
  (void)c; (void)ldc;
  for (long i = 0; i < mr; ++i) {
    float* hr = e->h + (m0 + i) * e->ldh + n0;
    float row[KG_NR];
    for (int v = 0; v < 2; ++v) {
      kg_vf g = {0};
      memcpy(&g, hr + v * KG_VW, sizeof(float) * (nr > v * KG_VW ? (nr - v * KG_VW < KG_VW ? nr - v * KG_VW : KG_VW) : 0));
      kg_store(row + v * KG_VW, kg_silu_mul(g, kg_load(acc + i * KG_NR + v * KG_VW)));
    }
    memcpy(hr, row, sizeof(float) * nr);
  }
}

void grouped_ffn(const float* x, const long* offsets, const float* w1, const float* w3, const float* w2,
                 float* out, long t, long d, long h, long ne) {
  if (offsets[0] < 0 || offsets[ne] > t) return;
  for (long e = 0; e < ne; ++e) if (offsets[e + 1] < offsets[e]) return;
  const long rows = offsets[ne] - offsets[0];
  if (rows <= 0) return;
  float* H = (float*)malloc(sizeof(float) * rows * h);   /* G, then silu(G) * U, [rows, ffn] */
  const long ns1 = (h + SL - 1) / SL, ns2 = (d + SL - 1) / SL;
  #pragma omp parallel
  {
    float* u = (float*)malloc(sizeof(float) * t * SL);   /* partial sums of X W3^T for one slice */
    #pragma omp for schedule(dynamic, 1)
    for (long it = 0; it < ne * ns1; ++it) {
      const long e = it / ns1, j0 = (it % ns1) * SL, j1 = j0 + SL < h ? j0 + SL : h;
      const long r0 = offsets[e], m = offsets[e + 1] - r0;
      if (m <= 0) continue;
      float* he = H + (r0 - offsets[0]) * h;
      const kg_operand xa = {x + r0 * d, d, 1, d, NULL, 0, 0};
      const kg_operand g1 = {w1 + (e * h + j0) * d, d, 1, d, NULL, 0, 0};
      const kg_operand g3 = {w3 + (e * h + j0) * d, d, 1, d, NULL, 0, 0};
      kg_gemm_thread(m, 0, j1 - j0, d, &xa, &g1, he + j0, h, NULL, NULL, NULL);
      swiglu_ctx sc = {he + j0, h};
      kg_gemm_thread(m, 0, j1 - j0, d, &xa, &g3, u, SL, NULL, swiglu_epilogue, &sc);
    }
    #pragma omp for schedule(dynamic, 1)
    for (long it = 0; it < ne * ns2; ++it) {
      const long e = it / ns2, i0 = (it % ns2) * SL, i1 = i0 + SL < d ? i0 + SL : d;
      const long r0 = offsets[e], m = offsets[e + 1] - r0;
      if (m <= 0) continue;
      const kg_operand ha = {H + (r0 - offsets[0]) * h, h, 1, h, NULL, 0, 0};
      const kg_operand w = {w2 + (e * d + i0) * h, h, 1, h, NULL, 0, 0};
      kg_gemm_thread(m, 0, i1 - i0, h, &ha, &w, out + r0 * d + i0, d, NULL, NULL, NULL);
    }
    free(u);
  }
  free(H);
}
"""

_LIB = load_library(
    _SRC,
    flags=FLAGS,
    functions={
        "grouped_ffn": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])
    },
)


class ModelNew(nn.Module):
    def __init__(self, num_experts: int, hidden: int, ffn: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(num_experts, ffn, hidden))
        self.w3 = nn.Parameter(torch.empty(num_experts, ffn, hidden))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden, ffn))

    def forward(self, x: torch.Tensor, expert_offsets: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        offsets = expert_offsets.contiguous()
        w1 = self.w1.detach().contiguous()
        w3 = self.w3.detach().contiguous()
        w2 = self.w2.detach().contiguous()
        ne, h, d = w1.shape
        t = x.shape[0]
        # rows outside [offsets[0], offsets[-1]) belong to no expert: zero, as in the reference
        out = torch.zeros(t, d, dtype=torch.float32)
        _LIB.grouped_ffn(
            x.data_ptr(),
            offsets.data_ptr(),
            w1.data_ptr(),
            w3.data_ptr(),
            w2.data_ptr(),
            out.data_ptr(),
            t,
            d,
            h,
            ne,
        )
        return out
'''


def render(config: dict) -> str:
    return gemm_render(TASK, _SOLUTION, config, _DOC)
