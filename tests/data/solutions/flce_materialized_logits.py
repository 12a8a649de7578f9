"""A correct fused linear cross-entropy that materializes the logits (C/OpenMP).

Models the eager approach the task forbids: the full ``[tokens, vocab]`` logits tensor is
allocated (``torch.empty``) and written by a C GEMM, then reduced row by row to the loss. Its
outputs are right, so only the task's MEMORY_BUDGET can reject it: the peak resident memory a call
adds is at least the logits' size (16 MiB at the headline shape).
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>

void logits_f32(const float* h, const float* w, float* out, long tokens, long d, long vocab) {
  #pragma omp parallel for schedule(static)
  for (long v = 0; v < vocab; ++v) {
    const float* wr = w + v * d;
    for (long t = 0; t < tokens; ++t) {
      const float* hr = h + t * d;
      float s = 0.f;
      #pragma omp simd reduction(+:s)
      for (long k = 0; k < d; ++k) s += hr[k] * wr[k];
      out[t * vocab + v] = s;
    }
  }
}

void ce_rows(const float* logits, const long* targets, float* loss, long tokens, long vocab, long ignore) {
  double total = 0.0;
  long n = 0;
  for (long t = 0; t < tokens; ++t) {
    if (targets[t] == ignore) continue;
    const float* r = logits + t * vocab;
    double m = r[0];
    for (long v = 1; v < vocab; ++v) m = r[v] > m ? r[v] : m;
    double s = 0.0;
    for (long v = 0; v < vocab; ++v) s += exp((double)r[v] - m);
    total += m + log(s) - (double)r[targets[t]];
    ++n;
  }
  *loss = n ? (float)(total / (double)n) : NAN;
}
"""

_LIB = load_library(
    _SRC,
    functions={
        "logits_f32": (None, ["ptr", "ptr", "ptr", "long", "long", "long"]),
        "ce_rows": (None, ["ptr", "ptr", "ptr", "long", "long", "long"]),
    },
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
        vocab = w.shape[0]
        logits = torch.empty((tokens, vocab), dtype=torch.float32)  # the materialized logits
        _LIB.logits_f32(hidden.data_ptr(), w.data_ptr(), logits.data_ptr(), tokens, d, vocab)
        loss = torch.empty((), dtype=torch.float32)
        _LIB.ce_rows(logits.data_ptr(), targets.data_ptr(), loss.data_ptr(), tokens, vocab, self.ignore_index)
        return loss
