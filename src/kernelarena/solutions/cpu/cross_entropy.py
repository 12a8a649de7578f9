"""Fused cross-entropy (C/OpenMP): one DRAM pass over the logits, no log-softmax tensor.

Per row: blocked online log-sum-exp (2048-float chunks stay in L1: vectorised max, one rescale
per chunk, vectorised ``sum(exp(x - m))`` with an inline polynomial exp), the target logit is
read directly, ``loss_t = lse - x[t, target]`` is kept in double. Rows with ``ignore_index`` are
skipped entirely (their logits are never read). Rows are split across OpenMP threads; per-row losses
are summed in a fixed order, so the result does not depend on scheduling.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 2048

#include "karena/vmath.h"
#define exp_f kv_expf /* the shared polynomial (< 2 ulp on [-87, 88], clamped outside) */

static double row_lse(const float* restrict x, long n) {
  float m = -INFINITY;
  double s = 0.0;
  for (long b = 0; b < n; b += CHUNK) {
    long e = b + CHUNK < n ? b + CHUNK : n;
    float cm = -INFINITY;
    #pragma omp simd reduction(max:cm)
    for (long i = b; i < e; ++i) cm = x[i] > cm ? x[i] : cm;
    if (cm > m) { s *= exp((double)(m - cm)); m = cm; }
    float cs = 0.f;
    #pragma omp simd reduction(+:cs)
    for (long i = b; i < e; ++i) cs += exp_f(x[i] - m);
    s += cs;
  }
  return (double)m + log(s);
}

void cross_entropy_f32(const float* restrict x, const long* restrict tgt, float* restrict out, long rows,
                       long cols, long ignore_index) {
  double* loss = (double*)malloc(sizeof(double) * (rows > 0 ? rows : 1));
  #pragma omp parallel for schedule(dynamic, 4)
  for (long r = 0; r < rows; ++r) {
    long t = tgt[r];
    if (t == ignore_index || t < 0 || t >= cols) { loss[r] = NAN; continue; }
    const float* xr = x + r * cols;
    loss[r] = row_lse(xr, cols) - (double)xr[t];
  }
  double total = 0.0;
  long count = 0;
  for (long r = 0; r < rows; ++r) {
    long t = tgt[r];
    if (t == ignore_index) continue;
    total += loss[r];  /* out-of-range targets give NaN rather than a silently wrong mean */
    ++count;
  }
  free(loss);
  out[0] = (float)(total / (double)count);  /* count == 0 gives NaN, as F.cross_entropy */
}
"""

_LIB = load_library(
    _SRC,
    functions={"cross_entropy_f32": (None, ["ptr", "ptr", "ptr", "long", "long", "long"])},
    flags=SIMD_FLAGS,
)


class ModelNew(nn.Module):
    def __init__(self, ignore_index: int = -100):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.contiguous()
        targets = targets.to(torch.int64).contiguous()
        rows, cols = logits.shape
        loss = torch.empty((), dtype=logits.dtype)
        _LIB.cross_entropy_f32(
            logits.data_ptr(), targets.data_ptr(), loss.data_ptr(), rows, cols, self.ignore_index
        )
        return loss
