"""Fused linear cross-entropy template on the shared GEMM core ``karena/gemm.h``.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does); the space is the GEMM
core's cache blocks, shared with gemm_fp32 (``_common.GEMM_SPACE``).
"""

from kernelarena.search.templates._common import GEMM_DEFAULT as DEFAULT
from kernelarena.search.templates._common import GEMM_SPACE as SPACE
from kernelarena.search.templates._common import gemm_constraints as constraints
from kernelarena.search.templates._common import gemm_features as features
from kernelarena.search.templates._common import gemm_lite as lite_space
from kernelarena.search.templates._common import gemm_render

TASK = "fused_linear_cross_entropy"
__all__ = ["DEFAULT", "SPACE", "TASK", "constraints", "features", "lite_space", "render"]

_DOC = """Cut Cross-Entropy on the CPU (C/OpenMP on the shared ``karena/gemm.h``): the logits never exist.

The LM-head GEMM is computed transposed, ``logits^T = W . h^T``, by the shared packed GEMM core
(12x32 AVX-512, 6x16 AVX2 or 6x8 generic register tile). The hidden states are packed once for all
threads; each thread owns a contiguous range of the vocabulary and streams its rows of ``weight``
from memory exactly once, one chunk of ``KG_MC`` rows at a time, so the partial sums between K
blocks live in a ``KG_MC x tokens`` scratch that stays in L2. When a tile is final its epilogue
folds the logits into a running ``(max, sum of exp)`` per token (online log-sum-exp, vectorised
across tokens, one vector exp per logit). The target logit is one dot product per token (in
double). Per-thread partial (max, sum) pairs are merged in a fixed order, so the loss does not
depend on scheduling."""

_SOLUTION = r'''

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
#include <math.h>
@GEMM_KNOBS@
#include "karena/gemm.h"

static double dot_d(const float* a, const float* b, long n) {
  double s = 0.0;
  #pragma omp simd reduction(+:s)
  for (long i = 0; i < n; ++i) s += (double)a[i] * (double)b[i];
  return s;
}

/* the running (max, sum of exp) of this thread, one lane per token (padded to whole tiles) */
typedef struct { float *m, *s; } ce_ctx;

/* tile rows are vocabulary entries, columns are tokens: fold mr logits into every token's pair */
static void ce_epilogue(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                        const void* ctx) {
  const ce_ctx* e = (const ce_ctx*)ctx;
  (void)c; (void)ldc; (void)m0; (void)nr;
  for (int h = 0; h < 2; ++h) {
    float* mp = e->m + n0 + h * KG_VW;
    float* sp = e->s + n0 + h * KG_VW;
    const kg_vf mo = kg_load(mp);
    kg_vf tmax = kg_load(acc + h * KG_VW);
    for (long i = 1; i < mr; ++i) tmax = kg_max(tmax, kg_load(acc + i * KG_NR + h * KG_VW));
    const kg_vf mn = kg_max(mo, tmax);
    kg_vf sum = kg_load(sp) * kg_exp(mo - mn);
    for (long i = 0; i < mr; ++i) sum += kg_exp(kg_load(acc + i * KG_NR + h * KG_VW) - mn);
    kg_store(mp, mn);
    kg_store(sp, sum);
  }
}

void flce_f32(const float* restrict h, const float* restrict W, const long* restrict tgt,
              float* restrict out, long T, long d, long V, long ignore_index) {
  const int nth = omp_get_max_threads();
  const long tpad = ((T + KG_NR - 1) / KG_NR) * KG_NR;
  float* m = (float*)aligned_alloc(64, sizeof(float) * tpad * nth);
  float* s = (float*)aligned_alloc(64, sizeof(float) * tpad * nth);
  for (long i = 0; i < tpad * nth; ++i) { m[i] = -INFINITY; s[i] = 0.f; }
  const kg_operand hop = {h, d, 1, d, NULL, 0, 0};  /* B side: row t, k = h[t * d + k] */
  float* hp = (float*)aligned_alloc(64, sizeof(float) * (kg_prepacked_floats(T, d) + 1));
  kg_prepack_b(&hop, T, d, hp);
  const long nch = (V + KG_MC - 1) / KG_MC;
  #pragma omp parallel num_threads(nth)
  {
    const int id = omp_get_thread_num(), n = omp_get_num_threads();
    const long c0 = nch * id / n, c1 = nch * (id + 1) / n;
    float* scratch = (float*)aligned_alloc(64, sizeof(float) * KG_MC * tpad);
    ce_ctx ctx = {m + id * tpad, s + id * tpad};
    for (long ch = c0; ch < c1; ++ch) {
      const long v0 = ch * KG_MC, rows = V - v0 < KG_MC ? V - v0 : KG_MC;
      const kg_operand wop = {W + v0 * d, d, 1, d, NULL, 0, 0};
      kg_gemm_core(rows, 0, T, d, &wop, &hop, hp, scratch, tpad, NULL, ce_epilogue, &ctx);
    }
    free(scratch);
  }
  free(hp);
  double total = 0.0;
  long count = 0;
  for (long t = 0; t < T; ++t) {
    const long y = tgt[t];
    if (y == ignore_index) continue;
    if (y < 0 || y >= V) { total = NAN; ++count; continue; }
    float mx = -INFINITY;
    for (int i = 0; i < nth; ++i) mx = m[i * tpad + t] > mx ? m[i * tpad + t] : mx;
    double sum = 0.0;
    for (int i = 0; i < nth; ++i)
      if (m[i * tpad + t] != -INFINITY) sum += (double)s[i * tpad + t] * exp((double)m[i * tpad + t] - mx);
    total += (double)mx + log(sum) - dot_d(h + t * d, W + y * d, d);
    ++count;
  }
  free(m);
  free(s);
  out[0] = (float)(total / (double)count);
}
"""

_LIB = load_library(
    _SRC,
    flags=FLAGS,
    functions={"flce_f32": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self, d: int, vocab: int, ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index
        self.weight = nn.Parameter(torch.empty(vocab, d))

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        hidden = hidden.contiguous()
        w = self.weight.detach().contiguous()
        targets = targets.to(torch.int64).contiguous()
        tokens, d = hidden.shape
        loss = torch.empty((), dtype=hidden.dtype)
        _LIB.flce_f32(
            hidden.data_ptr(),
            w.data_ptr(),
            targets.data_ptr(),
            loss.data_ptr(),
            tokens,
            d,
            w.shape[0],
            self.ignore_index,
        )
        return loss
'''


def render(config: dict) -> str:
    return gemm_render(TASK, _SOLUTION, config, _DOC)
