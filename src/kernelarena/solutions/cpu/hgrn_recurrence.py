"""HGRN gated linear recurrence as one streaming scan (C/OpenMP).

Work items are (batch entry, block of 256 channels); each walks the time axis once, keeping its
block of states in a small L1-resident array that gcc vectorizes (16 floats per AVX-512 op), and
reads each ``c_t``/``f_t`` block and writes each ``h_t`` block exactly once. The update is written as
``h = f * h + (1 - f) * c`` like the reference. The eager loop instead launches four small kernels
per time step and stacks the states at the end.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#define CH 256

void hgrn_scan_f32(const float* restrict c, const float* restrict f, const float* restrict h0,
                   float* restrict h, long batch, long seq, long dim) {
  long nblk = (dim + CH - 1) / CH;
  #pragma omp parallel for schedule(static)
  for (long item = 0; item < batch * nblk; ++item) {
    long b = item / nblk, d0 = (item % nblk) * CH;
    long w = dim - d0 < CH ? dim - d0 : CH;
    float st[CH];
    for (long d = 0; d < w; ++d) st[d] = h0[b * dim + d0 + d];
    const float* cb = c + b * seq * dim + d0; const float* fb = f + b * seq * dim + d0;
    float* hb = h + b * seq * dim + d0;
    for (long t = 0; t < seq; ++t) {
      const float* ct = cb + t * dim; const float* ft = fb + t * dim; float* ht = hb + t * dim;
      #pragma omp simd
      for (long d = 0; d < w; ++d) {
        float s = ft[d] * st[d] + (1.f - ft[d]) * ct[d];
        st[d] = s;
        ht[d] = s;
      }
    }
  }
}
"""

_LIB = load_library(
    _SRC, functions={"hgrn_scan_f32": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long"])}
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, c: torch.Tensor, f: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        c, f, h0 = c.contiguous(), f.contiguous(), h0.contiguous()
        batch, seq, dim = c.shape
        h = torch.empty_like(c)
        _LIB.hgrn_scan_f32(c.data_ptr(), f.data_ptr(), h0.data_ptr(), h.data_ptr(), batch, seq, dim)
        return h
